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
    /// Run the repository policy service (reads GITHUB_TOKEN, CHARM_TOKEN, GITHUB_URL,
    /// and STATE_DIRECTORY or POLICY_DOCUMENT from the environment).
    PolicyServer {
        /// Address for runners' routes (check-runs, /health), ADDR:PORT; may be repeated.
        #[arg(long = "bind", required = true)]
        bind: Vec<std::net::SocketAddr>,
        /// Loopback address for the charm's routes (/one-time-token, /policy, /health),
        /// ADDR:PORT; may be repeated. A non-loopback address is refused.
        #[arg(long = "charm-bind", required = true)]
        charm_bind: Vec<policy_service::listen::LoopbackAddr>,
        /// Append a `refused-by-policy` JSON line per refused job to this file (rotated
        /// at 10 MiB, 3 kept). Without it no event log is kept.
        #[arg(long = "events-log", requires = "unit")]
        events_log: Option<std::path::PathBuf>,
        /// The Juju unit (`app/N`) the event lines name.
        #[arg(long, requires = "events_log")]
        unit: Option<String>,
    },
    /// Run the runner manager of a unit: it owns the unit's runner pool, reads what the
    /// hooks wrote for it and answers them on a local socket.
    Manager {
        /// The Juju unit, `app/N`.
        #[arg(long)]
        unit: String,
    },
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
        Command::PolicyServer {
            bind,
            charm_bind,
            events_log,
            unit,
        } => {
            github_runner::juju::init_logging(false);
            let binds = policy_service::Binds {
                runners: bind,
                charm: charm_bind,
            };
            let events = events_log
                .zip(unit)
                .map(|(path, unit)| policy_service::EventsFile { path, unit });
            policy_service::run(&binds, events.as_ref())
        }
        Command::Manager { unit } => {
            github_runner::juju::init_logging(false);
            github_runner::manager::run(&unit)
        }
    }
}
