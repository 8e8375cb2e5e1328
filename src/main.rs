//! The `handler` executable: the Azure Functions custom handler, and the local tools beside it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use evalgate::taskhub;

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
    /// Serve the HTTP functions to the Functions host (the default).
    Serve,
    /// Run the embedded Durable Task task hub (a SQLite-backed backend) for local use.
    Taskhub(TaskhubArgs),
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

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run_taskhub(args: TaskhubArgs) -> anyhow::Result<()> {
    let options = taskhub::TaskHubOptions {
        listen: args.listen,
        storage: taskhub::Storage::File(args.data_dir),
        allow_non_loopback: args.allow_remote,
        lease_timeout: std::time::Duration::from_secs(args.lease_timeout_secs),
        ..taskhub::TaskHubOptions::default()
    };
    let hub = taskhub::serve(options).await?;
    // Tests and scripts read this line to find the port when listening on port 0.
    println!("LISTENING {}", hub.local_addr());

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("task hub shutting down");
    hub.shutdown().await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Ok(()),
        Command::Taskhub(args) => {
            init_tracing();
            tokio::runtime::Runtime::new()?.block_on(run_taskhub(args))
        }
    }
}
