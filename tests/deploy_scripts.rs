//! The packaging and deployment scripts pass shellcheck, and azd's hook calls a script that exists.
//! Nothing here runs the deployment: it would reach Azure.

use std::path::PathBuf;
use std::process::Command;

const SCRIPTS: [&str; 2] = ["scripts/package", "scripts/deploy"];

fn app_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn scripts_pass_shellcheck() {
    let output = Command::new("shellcheck")
        .arg("--severity=style")
        .args(SCRIPTS)
        .current_dir(app_root())
        .output()
        .expect("shellcheck is missing: run ./scripts/setup (Debian package shellcheck)");

    assert!(
        output.status.success(),
        "shellcheck: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn azd_postprovision_hook_publishes_with_the_deploy_script() {
    let azure_yaml = std::fs::read_to_string(app_root().join("azure.yaml")).expect("azure.yaml");

    let run = azure_yaml
        .lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix("run: "))
        .expect("a hook with a run line");
    let script = run.split_whitespace().next().unwrap();
    assert_eq!(script, "scripts/deploy");
    assert!(run.contains(" publish "), "the hook publishes: {run}");
    assert!(
        azure_yaml.contains("path: deploy"),
        "azd provisions deploy/main.bicep"
    );

    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(app_root().join(script))
            .expect("the hook's script exists")
            .permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "{script} is executable");
}
