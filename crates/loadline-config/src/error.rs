//! Scenario errors: each names the file, the 1-based line and column, the path of
//! the value inside the document, and what was found versus what was expected.

use std::fmt;

/// One problem in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the problem has no position (the file could not be read).
    pub line: usize,
    pub column: usize,
    /// Where in the document, like `phases[0].arrival_rate`; empty for the whole file.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A problem with no place in the file (it cannot be read, a flag is
        // wrong) names the file alone.
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a scenario file, in the order they appear in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn display_omits_an_empty_path() {
        let mut e = ConfigError {
            file: "s.yaml".into(),
            line: 3,
            column: 5,
            path: "phases[0].vus".into(),
            message: "expected an integer".into(),
        };
        assert_eq!(
            e.to_string(),
            "s.yaml:3:5: phases[0].vus: expected an integer"
        );
        e.path.clear();
        assert_eq!(e.to_string(), "s.yaml:3:5: expected an integer");
        let all = ConfigErrors {
            errors: vec![e.clone(), e],
        };
        assert_eq!(all.to_string().lines().count(), 2);
    }
}
