//! `github-sim`: the GitHub simulator as a process for tests, `make demo` and `make
//! bench`. Prints its base URL as the first line of stdout, serves until SIGTERM.

use clap::Parser;

#[derive(Parser)]
#[command(name = "github-sim", about = "An in-memory GitHub for tests and demos")]
struct Cli {
    #[command(flatten)]
    args: github_sim::SimArgs,
}

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    github_sim::run_cli(&Cli::parse().args)
}
