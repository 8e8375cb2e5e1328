//! What the Bicep compiler would check and no offline tool does: every module gets the parameters
//! it declares and only those, every `module.outputs.x` exists, and every parameter default obeys
//! its own decorators. Also the outputs and parameters the deployment guide promises.

#[path = "support/deploy_bicep.rs"]
mod bicep;
mod common;

use std::collections::BTreeSet;

use serde_json::Value;

use bicep::parsed;

/// `module.outputs.name` references in `value`, as property accessors or inside interpolations.
fn output_references(value: &Value, found: &mut BTreeSet<(String, String)>) {
    match value {
        Value::String(text) => {
            for part in text.split("${").skip(1) {
                let expr = part.split('}').next().unwrap_or("");
                if let [module, "outputs", name] = expr.split('.').collect::<Vec<_>>()[..] {
                    found.insert((module.to_owned(), name.to_owned()));
                }
            }
        }
        Value::Object(map) => {
            let accessor = &map.get("operator").map(|op| &op["operands"]);
            if let Some(operands) = accessor
                && map["operator"]["type"] == "property_accessor"
                && operands["operand_2"]["operator"]["operands"]["operand_1"] == "outputs"
            {
                found.insert((
                    operands["operand_1"].as_str().unwrap_or("").to_owned(),
                    operands["operand_2"]["operator"]["operands"]["operand_2"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                ));
            }
            map.values().for_each(|v| output_references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| output_references(v, found)),
        _ => {}
    }
}

#[test]
fn main_wires_every_module_parameter_and_output_that_exists() {
    let Some(files) = parsed() else { return };
    let main = &files["main.bicep"];
    let modules = main["modules"].as_object().expect("modules");

    for (symbol, module) in modules {
        let path = module["detail"]["path"].as_str().expect("module path");
        let declared = files[path]["parameters"].as_object().expect("parameters");
        let passed = module["config"]["params"].as_object().expect("params");
        for name in passed.keys() {
            assert!(
                declared.contains_key(name),
                "{symbol}: {path} has no param {name}"
            );
        }
        for (name, param) in declared {
            assert!(
                passed.contains_key(name) || !param["default"].is_null(),
                "{symbol}: required param {name} of {path} is not passed"
            );
        }
    }

    let mut references = BTreeSet::new();
    output_references(main, &mut references);
    assert!(!references.is_empty());
    for (symbol, output) in &references {
        let path = modules[symbol]["detail"]["path"].as_str().unwrap();
        assert!(
            files[path]["outputs"].get(output).is_some(),
            "{symbol}.outputs.{output} is not an output of {path}"
        );
    }

    let connection = &modules["functionApp"]["config"]["params"]["schedulerConnectionString"];
    assert_eq!(
        connection,
        "Endpoint=${scheduler.outputs.endpoint};TaskHub=${scheduler.outputs.taskHubName};\
         Authentication=ManagedIdentity;ClientID=${identity.outputs.clientId}"
    );
    for output in [
        "functionAppUrl",
        "apiBaseUrl",
        "schedulerDashboardUrl",
        "sessionPoolEndpoint",
    ] {
        assert!(main["outputs"].get(output).is_some(), "output {output}");
    }
    for param in [
        "alwaysReadyInstances",
        "approvalTimeout",
        "executionTimeout",
        "schedulerIpAllowlist",
        "sessionPoolApi",
        "sessionPoolCooldownSeconds",
        "sessionPoolMaxSessions",
    ] {
        assert!(main["parameters"].get(param).is_some(), "parameter {param}");
    }
}

/// The argument of decorator `kind` on a parameter, if it has one.
fn decorator<'a>(param: &'a Value, kind: &str) -> Option<&'a Value> {
    param["decorators"]
        .as_array()?
        .iter()
        .find(|d| d["type"] == kind)
        .map(|d| &d["argument"])
}

#[test]
fn parameter_defaults_obey_their_own_decorators() {
    let Some(files) = parsed() else { return };

    let mut checked = 0;
    for (file, parsed) in &files {
        let Some(params) = parsed["parameters"].as_object() else {
            continue;
        };
        for (name, param) in params {
            let default = &param["default"];
            if default.is_null() {
                continue;
            }
            let bound = |kind: &str| decorator(param, kind).and_then(Value::as_i64);

            if let Some(value) = default.as_i64() {
                if let Some(min) = bound("min_value") {
                    assert!(value >= min, "{file}: {name}={value} is below {min}");
                }
                if let Some(max) = bound("max_value") {
                    assert!(value <= max, "{file}: {name}={value} is above {max}");
                }
            }
            let length = match default {
                Value::String(text) => Some(text.chars().count() as i64),
                Value::Array(items) => Some(items.len() as i64),
                _ => None,
            };
            if let Some(length) = length {
                if let Some(min) = bound("min_length") {
                    assert!(length >= min, "{file}: {name} is shorter than {min}");
                }
                if let Some(max) = bound("max_length") {
                    assert!(length <= max, "{file}: {name} is longer than {max}");
                }
            }
            if let Some(allowed) = decorator(param, "allowed") {
                let allowed = allowed.as_array().expect("allowed list");
                assert!(
                    allowed.contains(default),
                    "{file}: {name}={default} is not allowed"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} defaults were checked");
}
