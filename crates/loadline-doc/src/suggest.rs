//! "Did you mean …?" for misspelt keys, names and values.

/// The candidate closest to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| {
            *d <= (c.chars().count() / 3).max(1) || (word.len() >= 3 && c.starts_with(word))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_string())
}

/// `` `a`, `b`, `c` ``: names for a message.
pub fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `one of a, b, c` (or just `a` for a single choice).
pub fn one_of(choices: &[&str]) -> String {
    match choices {
        [one] => one.to_string(),
        _ => format!("one of {}", choices.join(", ")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["duration", "arrival_rate", "vus"];
        assert_eq!(
            did_you_mean("arival_rate", keys).as_deref(),
            Some("arrival_rate")
        );
        assert_eq!(did_you_mean("vu", keys).as_deref(), Some("vus"));
        assert_eq!(
            did_you_mean("gett", ["get", "post"]).as_deref(),
            Some("get")
        );
        assert_eq!(did_you_mean("zebra", keys), None);
        assert_eq!(
            did_you_mean("abort", ["expr", "abort_on_fail"]).as_deref(),
            Some("abort_on_fail")
        );
        assert_eq!(one_of(&["a", "b"]), "one of a, b");
    }
}
