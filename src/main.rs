//! The `handler` executable: the Azure Functions custom handler, and the local tools beside it.

use clap::{Parser, Subcommand};

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
    /// Run the local code interpreter: the session pool's API on a loopback address.
    Interpreter(InterpreterArgs),
}

#[derive(clap::Args)]
struct InterpreterArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8089")]
    listen: std::net::SocketAddr,
    /// Python interpreter for sessions, e.g. a virtual environment's bin/python.
    #[arg(long, env = evalgate::sessions::interpreter::PYTHON_ENV)]
    python: Option<std::path::PathBuf>,
    /// Run code even when no isolation layer works on this machine.
    #[arg(long, env = evalgate::sessions::interpreter::ALLOW_UNISOLATED_ENV)]
    allow_unisolated: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Ok(()),
        Command::Interpreter(args) => run_interpreter(args),
    }
}

fn run_interpreter(args: InterpreterArgs) -> anyhow::Result<()> {
    use evalgate::sessions::interpreter::{InterpreterOptions, serve};
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let mut options = InterpreterOptions {
        listen: args.listen,
        allow_unisolated: args.allow_unisolated,
        ..InterpreterOptions::default()
    };
    if let Some(python) = args.python {
        options.python = python;
    }
    tokio::runtime::Runtime::new()?.block_on(async {
        let interpreter = serve(options).await?;
        println!("local interpreter listening on {}", interpreter.base_url());
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted?,
            _ = terminate.recv() => {}
        }
        interpreter.shutdown().await;
        Ok(())
    })
}
