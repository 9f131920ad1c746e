//! How we were invoked: by Juju through `dispatch` (no arguments, `JUJU_DISPATCH_PATH`
//! set), or as a service or tool through a subcommand. Maps the result to an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "github-runner",
    version,
    about = "Ephemeral GitHub runners on LXD, as a Juju charm"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Juju event named by JUJU_DISPATCH_PATH (what `dispatch` does).
    Hook,
    /// Run the GitHub simulator (prints its base URL, serves until SIGTERM).
    Sim(github_runner::sim::SimArgs),
}

fn main() -> ExitCode {
    let in_hook =
        std::env::args_os().len() <= 1 && std::env::var_os("JUJU_DISPATCH_PATH").is_some();
    if in_hook {
        github_runner::juju::init_logging(true);
        return github_runner::charm::run_hook();
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Hook => {
            github_runner::juju::init_logging(true);
            github_runner::charm::run_hook()
        }
        Command::Sim(args) => {
            github_runner::juju::init_logging(false);
            github_runner::sim::run_cli(&args)
        }
    }
}
