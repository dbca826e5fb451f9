//! `loadline run URL`: one URL loaded with no scenario file, as `oha` and `hey`
//! do. The flags become a one-step scenario (a JSON document, which the YAML
//! loader reads as it is) loaded through the same loader and overrides as a
//! file, so the run, its checks, its outputs and its errors are a scenario's.

use std::path::Path;
use std::process::ExitCode;

use loadline_config::{LoadOverride, Loaded};
use serde_json::{json, Map, Value};

use crate::args::{RequestArgs, ScenarioArgs};
use crate::{scenario, EXIT_INVALID};

/// The methods a step can use.
const METHODS: [&str; 6] = ["get", "post", "put", "patch", "delete", "head"];

/// The argument as a URL, when it is one (`http://…` or `https://…`).
pub fn as_url(arg: &Path) -> Option<&str> {
    let text = arg.to_str()?;
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://")).then_some(text)
}

/// Loads the one-request scenario of `url` and the flags; errors are printed
/// (exit 2).
pub fn load(url: &str, args: &ScenarioArgs, request: &RequestArgs) -> Result<Loaded, ExitCode> {
    let invalid = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_INVALID)
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(format!("invalid URL `{url}`: {e}")))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(format!("invalid URL `{url}`: it has no host")));
    }
    if args.target.is_some() {
        return Err(invalid(
            "--target: with a URL, the URL is where the load goes; --target redirects a scenario file's load".into(),
        ));
    }
    let text = document(url, &parsed, request).map_err(invalid)?;
    let mut overrides = args.overrides(false);
    overrides.load = Some(default_load(args.load()));
    let source = loadline_run::redacted(&parsed);
    let base = std::env::current_dir().unwrap_or_else(|_| ".".into());
    scenario::report(
        &source,
        loadline_config::load_str_with(&source, &text, &base, &overrides),
    )
}

/// The load when the flags give none, or only part of it: one VU, and one
/// iteration when nothing says how long (k6's defaults).
fn default_load(given: Option<LoadOverride>) -> LoadOverride {
    let mut load = given.unwrap_or_default();
    let paced = load.vus.is_some() || load.rate.is_some();
    if !paced && load.duration.is_none() && load.iterations.is_none() {
        load.iterations = Some(1);
    }
    if !paced {
        load.vus = Some(1);
    }
    load
}

/// The scenario document of one request.
fn document(url: &str, parsed: &url::Url, request: &RequestArgs) -> Result<String, String> {
    let method = request
        .method
        .as_deref()
        .unwrap_or("get")
        .to_ascii_lowercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(format!(
            "-m {}: expected one of GET, POST, PUT, PATCH, DELETE, HEAD",
            request.method.as_deref().unwrap_or_default()
        ));
    }
    let mut step = Map::new();
    step.insert(method.clone(), Value::from(url));
    if !request.headers.is_empty() {
        let mut headers = Map::new();
        for (name, value) in &request.headers {
            let taken = headers
                .keys()
                .any(|k: &String| k.eq_ignore_ascii_case(name));
            if taken {
                return Err(format!(
                    "-H {name}: given twice; give each header once (join values with `, `)"
                ));
            }
            headers.insert(name.clone(), Value::from(value.as_str()));
        }
        step.insert("headers".into(), Value::Object(headers));
    }
    if let Some(body) = &request.body {
        let body = match body.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("-b @{path}: cannot read the body file: {e}"))?,
            None => body.clone(),
        };
        if method == "get" || method == "head" {
            return Err(format!(
                "-b: a {} request sends no body; choose a method that does with -m (POST, PUT, PATCH, DELETE)",
                method.to_ascii_uppercase()
            ));
        }
        step.insert("body".into(), Value::from(body));
    }
    let origin = parsed.origin().ascii_serialization();
    let doc = json!({
        "target": origin,
        "flows": [ { "steps": [ Value::Object(step) ] } ],
    });
    serde_json::to_string_pretty(&doc).map_err(|e| format!("cannot build the scenario: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_files() {
        assert_eq!(as_url(Path::new("http://a/")), Some("http://a/"));
        assert_eq!(as_url(Path::new("HTTPS://a/")), Some("HTTPS://a/"));
        assert_eq!(as_url(Path::new("shop.yaml")), None);
        assert_eq!(as_url(Path::new("http.yaml")), None);
    }

    #[test]
    fn missing_load_takes_k6_defaults() {
        let d = default_load(None);
        assert_eq!((d.vus, d.iterations, d.duration), (Some(1), Some(1), None));
        let secs = std::time::Duration::from_secs(2);
        let d = default_load(Some(LoadOverride {
            duration: Some(secs),
            ..LoadOverride::default()
        }));
        assert_eq!(
            (d.vus, d.iterations, d.duration),
            (Some(1), None, Some(secs))
        );
        let d = default_load(Some(LoadOverride {
            rate: Some(5.0),
            duration: Some(secs),
            ..LoadOverride::default()
        }));
        assert_eq!((d.vus, d.rate, d.iterations), (None, Some(5.0), None));
    }
}
