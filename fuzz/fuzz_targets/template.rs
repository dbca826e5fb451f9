//! Any text as a template: compiled (and rendered) or rejected at an offset inside
//! the text.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use loadline_core::template::{JsonTemplate, PathSeg, Scope, Template, VarRef, Vars};

struct FuzzScope;

impl Scope for FuzzScope {
    fn resolve(&self, name: &str, path: &[PathSeg]) -> Result<VarRef, String> {
        match name {
            "c" => Ok(VarRef::Capture { slot: 0, path: path.to_vec() }),
            "k" => Ok(VarRef::Const(serde_json::json!({"a": [1, {"b": "x"}]}))),
            _ => Err("unknown".into()),
        }
    }
    fn env(&self, _name: &str) -> Option<String> {
        None
    }
}

fuzz_target!(|text: &str| {
    let mut vars = Vars::new(1, Arc::new(Vec::new()), 1, 1);
    vars.captures[0] = Some(serde_json::json!({"a": [1, 2], "s": "v"}));
    match Template::compile(text, &FuzzScope) {
        Ok(t) => {
            let _ = t.render(&mut vars);
            let _ = t.eval(&mut vars);
        }
        Err(e) => assert!(e.offset <= text.len()),
    }
    let body = serde_json::json!({ "v": text, "l": [text] });
    if let Ok(t) = JsonTemplate::compile(&body, &FuzzScope) {
        let mut out = String::new();
        t.render_into(&mut vars, &mut out);
        assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok());
    }
});
