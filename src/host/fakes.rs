//! In-memory [`Commands`] (and the test clock) for unit tests: scripted answers matched by
//! program and argument prefix, and a record of every call.

use std::cell::RefCell;
use std::collections::VecDeque;

use super::{Cmd, CmdOutput, CommandError, Commands};

struct Rule {
    program: String,
    prefix: Vec<String>,
    /// Answers in order; the last one repeats.
    answers: VecDeque<CmdOutput>,
}

#[derive(Default)]
pub struct FakeCommands {
    rules: RefCell<Vec<Rule>>,
    pub calls: RefCell<Vec<Cmd>>,
}

impl FakeCommands {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers for `program` with args starting with `prefix`, in order; the last repeats.
    /// Earlier rules win. Unscripted calls succeed with empty output.
    pub fn on(&self, program: &str, prefix: &[&str], answers: Vec<CmdOutput>) -> &Self {
        self.rules.borrow_mut().push(Rule {
            program: program.into(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            answers: answers.into(),
        });
        self
    }

    /// `program args...` of every call, for sequence assertions.
    pub fn lines(&self) -> Vec<String> {
        self.calls.borrow().iter().map(|c| c.to_string()).collect()
    }

    pub fn clear(&self) {
        self.calls.borrow_mut().clear();
    }
}

impl Commands for FakeCommands {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput, CommandError> {
        self.calls.borrow_mut().push(cmd.clone());
        let mut rules = self.rules.borrow_mut();
        let rule = rules
            .iter_mut()
            .find(|r| r.program == cmd.program && cmd.args.starts_with(&r.prefix));
        Ok(match rule {
            Some(r) if r.answers.len() > 1 => r.answers.pop_front().unwrap(),
            Some(r) => r.answers.front().cloned().unwrap_or_default(),
            None => CmdOutput::ok(""),
        })
    }
}

/// The clock for unit tests: moves only when slept on.
pub use ghr_types::clock::ManualClock as FakeClock;
