//! The `handler` executable: the Azure Functions custom handler, and the local tools beside it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use evalgate::config::{Config, PoolApi};
use evalgate::dev::{self, DevOptions};
use evalgate::runner::SessionRunner;
use evalgate::sessions::interpreter::{self, InterpreterOptions};
use evalgate::sessions::{ApiContract, SessionClient, SessionClientOptions};
use evalgate::telemetry::{self, LogTarget};
use evalgate::{app, durabletask, taskhub};

#[derive(Parser)]
#[command(
    name = "handler",
    version,
    about = "Secure code evaluation with human approval"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP functions to the Functions host and run the worker (the default).
    Serve,
    /// Run everything locally: the embedded task hub, the local interpreter and the handler.
    Dev(DevArgs),
    /// Run the embedded Durable Task task hub (a SQLite-backed backend) on its own.
    Taskhub(TaskhubArgs),
    /// Run the local code interpreter (the session pool's API on loopback) on its own.
    Interpreter(InterpreterArgs),
}

#[derive(Args)]
struct DevArgs {
    /// The HTTP port of the functions (0 picks a free one).
    #[arg(long, default_value_t = 7071)]
    port: u16,
    /// Where data is kept (the task hub's database under `taskhub/`).
    #[arg(long, default_value = ".data")]
    data_dir: PathBuf,
    /// The embedded task hub's gRPC address, for the official SDKs and grpcurl too.
    #[arg(long, default_value = taskhub::DEFAULT_LISTEN)]
    taskhub_listen: SocketAddr,
    /// The local interpreter's address.
    #[arg(long, default_value = "127.0.0.1:0")]
    interpreter_listen: SocketAddr,
    /// Use this session pool (or interpreter) instead of starting the local interpreter.
    #[arg(long)]
    session_pool_url: Option<reqwest::Url>,
}

#[derive(Args)]
struct TaskhubArgs {
    /// The address to listen on.
    #[arg(long, default_value = taskhub::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// The directory holding the task hub's SQLite database.
    #[arg(long, default_value = taskhub::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Allow a non-loopback listen address. The task hub has no authentication.
    #[arg(long)]
    allow_remote: bool,
    /// Seconds a worker may hold a work item before it is delivered again.
    #[arg(long, default_value_t = 300)]
    lease_timeout_secs: u64,
}

#[derive(Args)]
struct InterpreterArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: SocketAddr,
    /// Python interpreter for sessions, e.g. a virtual environment's bin/python.
    #[arg(long, env = interpreter::PYTHON_ENV)]
    python: Option<PathBuf>,
    /// Run code even when no isolation layer works on this machine.
    #[arg(long, env = interpreter::ALLOW_UNISOLATED_ENV)]
    allow_unisolated: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let target = match cli.command {
        None | Some(Command::Serve) => LogTarget::Stdout,
        Some(_) => LogTarget::Stderr,
    };
    telemetry::init(target);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve().await,
            Command::Dev(args) => {
                dev::run(DevOptions {
                    port: args.port,
                    data_dir: args.data_dir,
                    taskhub_listen: args.taskhub_listen,
                    interpreter_listen: args.interpreter_listen,
                    session_pool_url: args.session_pool_url,
                })
                .await
            }
            Command::Taskhub(args) => run_taskhub(args).await,
            Command::Interpreter(args) => run_interpreter(args).await,
        }
    })
}

/// The Functions host's mode: every part configured from the environment.
async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let listener = app::bind(config.port).await?;

    let mut session_options = SessionClientOptions::new(config.session_pool_url.clone());
    session_options.contract = match config.session_pool_api {
        PoolApi::Legacy2024 => ApiContract::Legacy2024,
        PoolApi::Executions2025 => ApiContract::Executions2025,
    };
    session_options.credential = durabletask::auth::credential_for(&config.connection)
        .context("cannot build the credential for the session pool")?;
    let runner = Arc::new(SessionRunner::new(SessionClient::new(session_options)?));

    app::run(config, listener, runner, app::shutdown_signal()).await
}

async fn run_taskhub(args: TaskhubArgs) -> anyhow::Result<()> {
    refuse_in_azure("taskhub")?;
    let options = taskhub::TaskHubOptions {
        listen: args.listen,
        storage: taskhub::Storage::File(args.data_dir),
        allow_non_loopback: args.allow_remote,
        lease_timeout: Duration::from_secs(args.lease_timeout_secs),
        ..taskhub::TaskHubOptions::default()
    };
    let hub = taskhub::serve(options).await?;
    // Tests and scripts read this line to find the port when listening on port 0.
    println!("LISTENING {}", hub.local_addr());

    app::shutdown_signal().await;
    hub.shutdown().await?;
    Ok(())
}

async fn run_interpreter(args: InterpreterArgs) -> anyhow::Result<()> {
    refuse_in_azure("interpreter")?;
    let mut options = InterpreterOptions {
        listen: args.listen,
        allow_unisolated: args.allow_unisolated,
        ..InterpreterOptions::default()
    };
    if let Some(python) = args.python {
        options.python = python;
    }
    let running = interpreter::serve(options).await?;
    println!("local interpreter listening on {}", running.base_url());

    app::shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}

/// The local stand-ins never run where the real services are expected.
fn refuse_in_azure(command: &str) -> anyhow::Result<()> {
    let env = std::env::vars().collect();
    if evalgate::config::running_in_azure(&env) {
        anyhow::bail!("`handler {command}` is a local stand-in and refuses to run in Azure");
    }
    Ok(())
}
