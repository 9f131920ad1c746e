//! Running host programs: one narrow trait ([`Commands`]) that everything in `host/`
//! goes through, and its real implementation ([`SystemCommands`]). Secrets travel in
//! `env` or `stdin`, never in `args`, which may be logged and are visible in `ps`.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a host command may run unless it says otherwise: long enough for a slow
/// mirror or snap store, short enough that a hung command does not hold the hook forever.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// One program invocation.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    /// Added to (not replacing) the charm's own environment.
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    /// Killed (with its process group) after this long; [`DEFAULT_TIMEOUT`] when `None`.
    pub timeout: Option<Duration>,
}

impl Cmd {
    pub fn new(program: &str, args: &[&str]) -> Self {
        Cmd {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Cmd::default()
        }
    }
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
    pub fn envs(mut self, env: &[(String, String)]) -> Self {
        self.env.extend_from_slice(env);
        self
    }
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// The command line only: env and stdin may hold secrets and are never shown.
impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.program)?;
        for a in &self.args {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cmd({self})")
    }
}

/// What a finished program left behind.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CmdOutput {
    /// The exit code; `None` when a signal ended the program.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn ok(stdout: &str) -> Self {
        CmdOutput {
            code: Some(0),
            stdout: stdout.to_string(),
            stderr: String::new(),
        }
    }
    pub fn failed(code: i32, stderr: &str) -> Self {
        CmdOutput {
            code: Some(code),
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    pub fn status_text(&self) -> String {
        match self.code {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        }
    }
    /// The last few lines of stderr (or stdout when stderr is empty), for messages.
    pub fn error_tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let lines: Vec<&str> = text.trim().lines().collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
        if tail.len() > 300 {
            let cut = tail.char_indices().nth(300).map_or(tail.len(), |(i, _)| i);
            format!("{}...", &tail[..cut])
        } else {
            tail
        }
    }
}

/// A program that could not be started at all.
#[derive(Debug, thiserror::Error)]
#[error("could not run {program}: {source}")]
pub struct CommandError {
    pub program: String,
    pub source: std::io::Error,
}

/// Runs programs. A non-zero exit is an answer, not an error: callers decide.
pub trait Commands {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, CommandError>;
}

/// [`Commands`] through `std::process`, with `PATH` lookup.
pub struct SystemCommands;

impl Commands for SystemCommands {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, CommandError> {
        let spawn_error = |source| CommandError {
            program: cmd.program.clone(),
            source,
        };
        log::debug!("running {cmd}");
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout also ends what it started
            // (apt-get's dpkg, for one).
            .process_group(0)
            .spawn()
            .map_err(spawn_error)?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        if let (Some(input), Some(mut pipe)) = (&cmd.stdin, child.stdin.take()) {
            // A program that exits without reading its input closes the pipe; its exit
            // status, not the write error, is the answer.
            let _ = pipe.write_all(input);
        }
        let timeout = cmd.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let code = wait_with_deadline(&mut child, timeout).map_err(spawn_error)?;
        let mut stderr = stderr.join().unwrap_or_default();
        if code.is_none() {
            stderr.push_str(&format!("\n{} timed out after {timeout:?}\n", cmd.program));
        }
        Ok(CmdOutput {
            code: code.flatten(),
            stdout: stdout.join().unwrap_or_default(),
            stderr,
        })
    }
}

/// Reads a pipe to its end on a thread, so that a chatty program never blocks on a full
/// pipe while we wait for it.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// `Some(exit code)` when the child ended in time (`Some(None)` for a signal), `None`
/// when it was killed at the deadline.
fn wait_with_deadline(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<Option<i32>>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status.code()));
        }
        if Instant::now() >= deadline {
            let group = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_with_env_and_stdin_and_reports_exit_codes() {
        let out = SystemCommands
            .run(
                &Cmd::new("sh", &["-c", "read line; echo \"$line-$GREETING\"; exit 3"])
                    .envs(&[("GREETING".into(), "hi".into())])
                    .stdin("hello\n"),
            )
            .unwrap();
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "hello-hi\n");
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_its_children() {
        let started = Instant::now();
        let out = SystemCommands
            .run(
                &Cmd::new("sh", &["-c", "sleep 30 & sleep 30"]).timeout(Duration::from_millis(300)),
            )
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(out.code, None);
        assert!(
            out.stderr.contains("sh timed out after 300ms"),
            "{}",
            out.stderr
        );
    }

    #[test]
    fn large_output_does_not_block() {
        let out = SystemCommands
            .run(&Cmd::new(
                "sh",
                &[
                    "-c",
                    "head -c 1000000 /dev/zero | tr '\\0' x; echo done >&2",
                ],
            ))
            .unwrap();
        assert_eq!(out.stdout.len(), 1_000_000);
        assert_eq!(out.stderr, "done\n");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = SystemCommands
            .run(&Cmd::new("/nonexistent/program", &[]))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/program"));
    }

    #[test]
    fn display_shows_argv_only() {
        let cmd = Cmd::new("apt-get", &["install", "-y"])
            .envs(&[("SECRET".into(), "s3cr3t".into())])
            .stdin("s3cr3t");
        assert_eq!(cmd.to_string(), "apt-get install -y");
        assert!(!format!("{cmd:?}").contains("s3cr3t"));
    }

    #[test]
    fn error_tail_keeps_the_last_lines() {
        let out = CmdOutput::failed(1, "a\nb\nc\nd\n");
        assert_eq!(out.error_tail(), "b | c | d");
    }
}
