//! Finding the Python interpreter that the interop tests drive.
//!
//! The tests use the virtual environment that `scripts/setup` creates in `.venv`, or the
//! interpreter named by `EVALGATE_TEST_PYTHON`. When it is missing, or lacks a package, the test
//! fails and says how to install it. `EVALGATE_SKIP_PYTHON=1` opts out for local runs only.

use std::path::PathBuf;
use std::process::Command;

/// The interpreter to use, if Python tests are not opted out. Panics with an install hint when the
/// interpreter or one of `modules` is missing.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    if std::env::var("EVALGATE_SKIP_PYTHON").as_deref() == Ok("1") {
        eprintln!("EVALGATE_SKIP_PYTHON=1: skipping a test that needs Python");
        return None;
    }

    let python = std::env::var_os("EVALGATE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        python.exists(),
        "Python for the interop tests is missing at {}. Install it with `./scripts/setup` \
         (or set EVALGATE_TEST_PYTHON; EVALGATE_SKIP_PYTHON=1 skips these tests locally)",
        python.display()
    );

    for module in modules {
        let status = Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .status()
            .expect("run python");
        assert!(
            status.success(),
            "Python module `{module}` is missing from {}. Install it with `./scripts/setup`",
            python.display()
        );
    }
    Some(python)
}
