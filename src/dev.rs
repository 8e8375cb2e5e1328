//! `handler dev`: the embedded default. The embedded task hub, the local code interpreter and the
//! handler in one process, on loopback, with data kept under one directory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};

use crate::app;
use crate::config::{self, Config};
use crate::runner::SessionRunner;
use crate::sessions::interpreter::{self, InterpreterOptions};
use crate::sessions::{SessionClient, SessionClientOptions};
use crate::taskhub::{self, Storage, TaskHubOptions};

/// What `handler dev` runs.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The HTTP port of the functions (0 picks a free one).
    pub port: u16,
    /// Where the task hub keeps its database.
    pub data_dir: PathBuf,
    /// The task hub's gRPC address, for the official SDKs and tools too.
    pub taskhub_listen: SocketAddr,
    /// The local interpreter's address.
    pub interpreter_listen: SocketAddr,
    /// An existing session pool (or interpreter) to use instead of starting one.
    pub session_pool_url: Option<reqwest::Url>,
}

/// Runs everything until SIGTERM or Ctrl-C.
pub async fn run(options: DevOptions) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    if config::running_in_azure(&env) {
        bail!(
            "`handler dev` runs local stand-ins (the embedded task hub and the local interpreter) \
             and refuses to run in Azure; run `handler` with the real services configured"
        );
    }

    // Check the user's settings before anything starts; the addresses are filled in below.
    let settings = |connection: &str, pool: &str| {
        let mut vars = env.clone();
        vars.insert(config::CONNECTION_STRING_VAR.into(), connection.to_owned());
        vars.insert(config::SESSION_POOL_URL_VAR.into(), pool.to_owned());
        vars.insert(config::PORT_VAR.into(), "7071".into());
        Config::from_map(&vars)
    };
    settings(
        "Endpoint=http://127.0.0.1:1;TaskHub=default;Authentication=None",
        "http://127.0.0.1:1/",
    )?;

    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create {}", options.data_dir.display()))?;
    let hub = taskhub::serve(TaskHubOptions {
        listen: options.taskhub_listen,
        storage: Storage::File(options.data_dir.join("taskhub")),
        ..TaskHubOptions::default()
    })
    .await
    .context("cannot start the embedded task hub")?;
    let connection = format!(
        "Endpoint=http://{};TaskHub=default;Authentication=None",
        hub.local_addr()
    );

    let (pool_url, interpreter) = match options.session_pool_url {
        Some(url) => (url, None),
        None => {
            let mut interpreter_options = InterpreterOptions::from_env();
            interpreter_options.listen = options.interpreter_listen;
            let running = interpreter::serve(interpreter_options)
                .await
                .context("cannot start the local code interpreter")?;
            (running.base_url(), Some(running))
        }
    };

    let mut config = settings(&connection, pool_url.as_str())?;
    config.port = options.port;

    let listener = app::bind(config.port).await?;
    let api = format!("http://{}/api", listener.local_addr()?);
    println!("api: {api}");
    println!("taskhub: {} ({connection})", hub.local_addr());
    match &interpreter {
        Some(running) => {
            let report = running.isolation();
            let active: Vec<&str> = report
                .layers
                .iter()
                .filter(|layer| layer.active)
                .map(|layer| layer.name)
                .collect();
            println!(
                "interpreter: {} (isolation: {})",
                running.base_url(),
                if active.is_empty() {
                    "NONE".to_owned()
                } else {
                    active.join(", ")
                }
            );
        }
        None => println!("interpreter: external, {pool_url}"),
    }
    println!("approval timeout: {}s", config.approval_timeout.as_secs());

    let mut session_options = SessionClientOptions::new(pool_url);
    session_options.contract = match config.session_pool_api {
        config::PoolApi::Legacy2024 => crate::sessions::ApiContract::Legacy2024,
        config::PoolApi::Executions2025 => crate::sessions::ApiContract::Executions2025,
    };
    let runner = Arc::new(SessionRunner::new(SessionClient::new(session_options)?));
    let served = app::run(config, listener, runner, app::shutdown_signal()).await;

    if let Some(running) = interpreter {
        running.shutdown().await;
    }
    hub.shutdown().await?;
    served
}
