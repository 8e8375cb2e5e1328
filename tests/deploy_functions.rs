//! The Functions app layout: host.json runs `handler` as a forwarding custom handler, and each
//! function folder declares the HTTP trigger (route, methods, key level) the handler serves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One HTTP function as its function.json declares it.
#[derive(Debug, PartialEq, Eq)]
struct HttpFunction {
    name: String,
    methods: Vec<String>,
    route: String,
    auth_level: String,
}

/// The functions the API promises: folder name, methods, route under the `/api` prefix.
const EXPECTED: [(&str, &[&str], &str); 3] = [
    ("ApproveCode", &["post"], "code/{id}/approval"),
    ("GetStatus", &["get"], "code/{id?}"),
    ("SubmitCode", &["post"], "code"),
];

fn app_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Every top-level folder holding a function.json, keyed by folder (function) name.
fn function_folders() -> BTreeMap<String, Value> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(app_root()).expect("list app root") {
        let path = entry.expect("dir entry").path();
        let manifest = path.join("function.json");
        if manifest.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            found.insert(name, read_json(&manifest));
        }
    }
    found
}

/// Reads one function.json, insisting on the shape that makes the host forward the raw request:
/// exactly one httpTrigger input named `req` and exactly one http output named `res`.
fn http_function(name: &str, manifest: &Value) -> HttpFunction {
    let bindings = manifest["bindings"].as_array().expect("bindings array");
    assert_eq!(bindings.len(), 2, "{name}: one trigger and one output");

    let trigger = &bindings[0];
    assert_eq!(trigger["type"], "httpTrigger", "{name}: first binding");
    assert_eq!(trigger["direction"], "in", "{name}: trigger direction");
    assert_eq!(trigger["name"], "req", "{name}: trigger name");

    let output = &bindings[1];
    assert_eq!(output["type"], "http", "{name}: second binding");
    assert_eq!(output["direction"], "out", "{name}: output direction");
    assert_eq!(output["name"], "res", "{name}: output name");

    HttpFunction {
        name: name.to_owned(),
        methods: trigger["methods"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: methods must be listed"))
            .iter()
            .map(|m| m.as_str().expect("method string").to_owned())
            .collect(),
        route: trigger["route"].as_str().expect("route").to_owned(),
        auth_level: trigger["authLevel"].as_str().expect("authLevel").to_owned(),
    }
}

#[test]
fn host_json_runs_handler_as_a_forwarding_custom_handler() {
    let host = read_json(&app_root().join("host.json"));

    assert_eq!(host["version"], "2.0");
    let custom = &host["customHandler"];
    assert_eq!(custom["description"]["defaultExecutablePath"], "handler");
    let working_dir = custom["description"]["workingDirectory"]
        .as_str()
        .unwrap_or("");
    assert_eq!(working_dir, "", "the handler runs from the app root");
    assert_eq!(custom["enableForwardingHttpRequest"], true);
    assert!(
        custom.get("enableProxyingHttpRequest").is_none(),
        "one forwarding mode only"
    );

    assert!(
        host.get("extensionBundle").is_none(),
        "HTTP-only: a bundle would be downloaded at start for nothing"
    );
    let prefix = host["extensions"]["http"]["routePrefix"]
        .as_str()
        .unwrap_or("api");
    assert_eq!(prefix, "api", "the handler matches paths under /api");
    assert!(
        host["logging"]["logLevel"]["default"].is_string(),
        "a default log level is set"
    );
}

#[test]
fn every_function_folder_declares_its_route_methods_and_key_level() {
    let declared: Vec<HttpFunction> = function_folders()
        .iter()
        .map(|(name, manifest)| http_function(name, manifest))
        .collect();

    let expected: Vec<HttpFunction> = EXPECTED
        .iter()
        .map(|(name, methods, route)| HttpFunction {
            name: (*name).to_owned(),
            methods: methods.iter().map(|m| (*m).to_owned()).collect(),
            route: (*route).to_owned(),
            auth_level: "function".to_owned(),
        })
        .collect();
    assert_eq!(declared, expected);
}

#[test]
fn local_settings_example_points_at_the_local_emulators() {
    let settings = read_json(&app_root().join("local.settings.json.example"));
    let values = &settings["Values"];

    assert_eq!(values["FUNCTIONS_WORKER_RUNTIME"], "custom");
    assert_eq!(
        values["DURABLE_TASK_SCHEDULER_CONNECTION_STRING"],
        "Endpoint=http://localhost:8080;Authentication=None;TaskHub=default"
    );
    let pool = values["SESSION_POOL_URL"]
        .as_str()
        .expect("SESSION_POOL_URL");
    assert!(
        pool.starts_with("http://127.0.0.1:"),
        "the local interpreter listens on loopback: {pool}"
    );
    assert_eq!(values["APPROVAL_TIMEOUT"], "24h");
    assert!(values["AzureWebJobsStorage"].is_string());
}
