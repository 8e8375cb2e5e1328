//! Which isolation layers are active, from the plan and what a probe kernel measured inside.

use serde::Serialize;
use serde_json::Value;

use super::SandboxPlan;

/// One layer of isolation and whether it held in the start-up probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IsolationLayer {
    /// A stable name: `namespaces`, `network`, `readOnlySystem`, `unprivilegedUid`,
    /// `capabilitiesDropped`, `seccomp`, `landlock`, `resourceLimits`, `processCleanup`.
    pub name: &'static str,
    pub active: bool,
    /// What was measured, in words.
    pub detail: String,
}

/// The isolation sessions get on this machine, as served by `GET /status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IsolationReport {
    pub layers: Vec<IsolationLayer>,
    /// At least one confining layer (namespaces, seccomp or Landlock) is active.
    pub isolated: bool,
    /// Code runs although nothing confines it, because the user opted in.
    pub unisolated_opt_in: bool,
}

impl IsolationReport {
    /// Whether the named layer is active.
    pub fn is_active(&self, name: &str) -> bool {
        self.layers
            .iter()
            .any(|layer| layer.name == name && layer.active)
    }

    /// The layers that are not active.
    pub fn missing(&self) -> impl Iterator<Item = &IsolationLayer> {
        self.layers.iter().filter(|layer| !layer.active)
    }
}

/// Builds the report from the plan and the probe kernel's `ready` message.
pub(crate) fn measure(plan: &SandboxPlan, ready: &Value) -> IsolationReport {
    let uid = ready["uid"].as_u64().unwrap_or(0);
    let own_pid_ns = ready["pid"].as_u64().is_some_and(|pid| pid <= 3);
    let namespaces = plan.bwrap.is_some() && own_pid_ns;
    let seccomp = ready["seccomp"].as_bool() == Some(true);
    let landlock = &ready["landlock"];
    let landlock_on = landlock["enforced"].as_bool() == Some(true);
    let limits = &ready["limits"];
    let planned = &plan.limits;
    let limits_on = limits["AS"].as_u64() == Some(planned.memory_bytes)
        && limits["NPROC"].as_u64().is_some()
        && limits["FSIZE"].as_u64() == Some(planned.file_size_bytes)
        && limits["NOFILE"].as_u64() == Some(planned.open_files);

    let layers = vec![
        layer(
            "namespaces",
            namespaces,
            "bubblewrap: user, pid, network, mount, ipc, uts and cgroup namespaces".into(),
            "bubblewrap is not installed or disabled",
        ),
        layer(
            "network",
            namespaces || seccomp,
            match (namespaces, seccomp) {
                (true, true) => "empty network namespace, and seccomp refuses non-unix sockets",
                (true, false) => "empty network namespace",
                _ => "seccomp refuses non-unix sockets",
            }
            .into(),
            "no network namespace and no seccomp filter",
        ),
        layer(
            "readOnlySystem",
            namespaces || landlock_on,
            if namespaces {
                "only /usr and the interpreter's directories, read-only".into()
            } else {
                "Landlock allows writes only to the session's directories".into()
            },
            "the host's filesystem is writable wherever the uid may write",
        ),
        layer(
            "unprivilegedUid",
            uid != 0,
            if plan.host_root {
                format!("each session has its own host uid (this one {uid})")
            } else {
                format!("the service's own uid {uid}, shared by all sessions")
            },
            "code runs as root",
        ),
        layer(
            "capabilitiesDropped",
            ready["capEff"].as_str() == Some("0000000000000000"),
            "effective capabilities 0".into(),
            "the process holds capabilities",
        ),
        layer(
            "seccomp",
            seccomp,
            "denylist filter active (seccomp mode 2)".into(),
            "no seccomp filter",
        ),
        layer(
            "landlock",
            landlock_on,
            format!(
                "ABI {}, TCP rules {}, signal scope {}",
                landlock["abi"],
                landlock["tcp"].as_bool() == Some(true),
                landlock["signalScope"].as_bool() == Some(true)
            ),
            "the kernel has no Landlock",
        ),
        layer(
            "resourceLimits",
            limits_on,
            format!("memory, CPU, processes, file size and open files: {limits}"),
            "the resource limits did not take effect",
        ),
        layer(
            "processCleanup",
            namespaces || plan.host_root,
            if namespaces {
                "everything but the kernel is killed in its pid namespace after each execution"
            } else {
                "every other process of the session's uid is killed after each execution"
            }
            .into(),
            "processes an execution leaves behind may outlive it",
        ),
    ];
    let isolated = namespaces || seccomp || landlock_on;
    IsolationReport {
        layers,
        isolated,
        unisolated_opt_in: false,
    }
}

fn layer(name: &'static str, active: bool, detail: String, missing: &str) -> IsolationLayer {
    IsolationLayer {
        name,
        active,
        detail: if active { detail } else { missing.into() },
    }
}
