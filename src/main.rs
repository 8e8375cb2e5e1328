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
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Ok(()),
    }
}
