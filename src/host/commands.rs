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

/// A program that could not be started, or that was killed at its timeout (`source` is
/// then of kind [`std::io::ErrorKind::TimedOut`] and ends with the tail of its output).
#[derive(Debug)]
pub struct CommandError {
    pub program: String,
    pub source: std::io::Error,
}

impl CommandError {
    pub fn timed_out(&self) -> bool {
        self.source.kind() == std::io::ErrorKind::TimedOut
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.timed_out() {
            write!(f, "{} {}", self.program, self.source)
        } else {
            write!(f, "could not run {}: {}", self.program, self.source)
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Runs programs. A non-zero exit is an answer, not an error: callers decide. A program
/// still running at its timeout is killed, and that is an error.
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
        if let (Some(input), Some(pipe)) = (&cmd.stdin, child.stdin.take()) {
            feed(pipe, input.clone());
        }
        let timeout = cmd.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let code = wait_with_deadline(&mut child, timeout).map_err(spawn_error)?;
        let out = CmdOutput {
            code: code.flatten(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        };
        if code.is_none() {
            let why = format!(
                "timed out after {timeout:?} and was killed: {}",
                out.error_tail()
            );
            return Err(spawn_error(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                why,
            )));
        }
        Ok(out)
    }
}

/// Writes a program's input on a thread of its own: a program that does not read it
/// fills the pipe, and the write must not keep us from its deadline. The write ends
/// when the program reads everything or its end of the pipe closes (it exited or was
/// killed); a program that exits without reading its input is answered by its exit
/// status, not by the write error.
pub(crate) fn feed(mut pipe: std::process::ChildStdin, input: Vec<u8>) {
    std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
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

    /// Whether `pid` has ended: no such process, or a zombie not yet reaped.
    fn ended(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
        }
    }

    /// The pid a test command wrote to `file`.
    fn pid_in(file: &std::path::Path) -> i32 {
        let text = std::fs::read_to_string(file).expect("the command wrote its pid");
        text.trim().parse().unwrap()
    }

    fn wait_ended(pid: i32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ended(pid) {
            assert!(Instant::now() < deadline, "process {pid} still running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("background");
        let script = format!("sleep 30 & echo $! > {}; sleep 30", pid_file.display());
        let err = SystemCommands
            .run(&Cmd::new("sh", &["-c", &script]).timeout(Duration::from_millis(300)))
            .unwrap_err();
        assert!(err.timed_out(), "{err}");
        assert!(
            err.to_string().starts_with("sh timed out after 300ms"),
            "{err}"
        );
        // The background sleep was in the command's process group.
        wait_ended(pid_in(&pid_file));
    }

    #[test]
    fn a_child_that_never_reads_its_input_cannot_outlast_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child");
        // Far more than a pipe holds (64 KiB), so writing it blocks until the child
        // reads, which it never does.
        let input = vec![b'x'; 1 << 20];
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let err = SystemCommands
            .run(
                &Cmd::new("sh", &["-c", &script])
                    .stdin(input)
                    .timeout(Duration::from_secs(1)),
            )
            .unwrap_err();
        assert_eq!(err.source.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(ended(pid_in(&pid_file)), "the child was reaped");
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
