//! Loads the Bicep under deploy/ through tests/support/deploy_bicep.py (PyPI `pycep-parser`) and
//! gives the Bicep tests typed access to its resources and variables. Each test file uses some of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Every Bicep file under deploy/, parsed, keyed by path relative to deploy/.
pub fn parsed() -> Option<BTreeMap<String, Value>> {
    let python = crate::common::python::python_with(&["pycep"])?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(python)
        .arg(root.join("tests/support/deploy_bicep.py"))
        .arg(root.join("deploy"))
        .output()
        .expect("run deploy_bicep.py");
    assert!(
        output.status.success(),
        "a Bicep file does not parse: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("parser output is JSON"))
}

/// One declared resource: its file, symbol, type, API version and body.
pub struct Resource<'a> {
    pub file: &'a str,
    pub symbol: &'a str,
    pub kind: &'a str,
    pub api_version: &'a str,
    pub body: &'a Value,
    /// The `if (...)` of a conditional resource.
    pub condition: Option<&'a Value>,
}

pub fn resources(files: &BTreeMap<String, Value>) -> Vec<Resource<'_>> {
    let mut all = Vec::new();
    for (file, parsed) in files {
        let Some(declared) = parsed["resources"].as_object() else {
            continue;
        };
        for (symbol, resource) in declared {
            // A conditional resource nests its body under config.config.
            let config = &resource["config"];
            let body = if config.get("condition").is_some() {
                &config["config"]
            } else {
                config
            };
            all.push(Resource {
                file,
                symbol,
                kind: resource["type"].as_str().expect("type"),
                api_version: resource["api_version"].as_str().expect("api_version"),
                body,
                condition: config.get("condition"),
            });
        }
    }
    all
}

pub fn one<'a>(all: &'a [Resource<'a>], kind: &str) -> &'a Resource<'a> {
    let found: Vec<_> = all.iter().filter(|r| r.kind == kind).collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found[0]
}

pub fn variable<'a>(files: &'a BTreeMap<String, Value>, file: &str, name: &str) -> &'a Value {
    &files[file]["variables"][name]["value"]
}
