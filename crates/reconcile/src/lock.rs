//! One reconcile at a time per unit: the timer, an action and a hook may all want one.
//! An exclusive `flock` on a file in the charm's state directory; a second reconcile
//! waits a bounded time, then gives up and says so.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// Held while a reconcile runs; released on drop (and by the kernel if we die).
pub struct ReconcileLock {
    _lock: Flock<File>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another reconcile held the lock for the whole wait.
    #[error("another reconcile is still running after waiting {0:?}; this one was skipped")]
    Busy(Duration),
    /// The lock file could not be opened or locked.
    #[error("reconcile lock {path}: {reason}")]
    Io { path: String, reason: String },
}

impl ReconcileLock {
    /// Waits up to `wait` for the lock, polling with backoff.
    pub fn acquire(path: &Path, wait: Duration) -> Result<Self, LockError> {
        Self::acquire_with(path, wait, || {})
    }

    /// [`acquire`](Self::acquire), calling `on_held` each time the lock is found held by
    /// another: tests see a waiter waiting without guessing how long that takes.
    pub fn acquire_with(
        path: &Path,
        wait: Duration,
        mut on_held: impl FnMut(),
    ) -> Result<Self, LockError> {
        let io = |e: &dyn std::fmt::Display| LockError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
        }
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(20);
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(|e| io(&e))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(ReconcileLock { _lock: lock }),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => on_held(),
                Err((_, errno)) => return Err(io(&errno)),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LockError::Busy(wait));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/reconcile.lock");
        let first = ReconcileLock::acquire(&path, Duration::from_millis(10)).unwrap();
        let err = ReconcileLock::acquire(&path, Duration::from_millis(50))
            .err()
            .unwrap();
        assert!(matches!(err, LockError::Busy(_)), "{err}");
        assert!(err
            .to_string()
            .contains("another reconcile is still running"));
        drop(first);
        assert!(ReconcileLock::acquire(&path, Duration::from_millis(10)).is_ok());
    }

    /// A second locker waits while the first holds the lock (it has tried and been
    /// refused, and has not got it), then gets it once the first lets go.
    #[test]
    fn the_lock_is_handed_over_to_a_waiter() {
        use std::sync::mpsc::{channel, TryRecvError};
        // Only turns a hang into a failure; nothing here waits for time to pass.
        let deadline = Duration::from_secs(60);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reconcile.lock");
        let first = ReconcileLock::acquire(&path, Duration::ZERO).unwrap();
        let (refused, refusals) = channel();
        let (got, outcome) = channel();
        let (let_go, told) = channel::<()>();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let lock = ReconcileLock::acquire_with(&p, deadline, move || {
                let _ = refused.send(());
            });
            got.send(lock.is_ok()).unwrap();
            let _ = told.recv(); // holds the lock until the test has checked it
        });
        refusals.recv_timeout(deadline).expect("the waiter tried");
        assert_eq!(
            outcome.try_recv(),
            Err(TryRecvError::Empty),
            "nothing acquired while the first holds it"
        );
        drop(first);
        assert_eq!(outcome.recv_timeout(deadline), Ok(true), "handed over");
        // The waiter holds it now: a third is refused.
        let third = ReconcileLock::acquire(&path, Duration::ZERO).err();
        assert!(matches!(third, Some(LockError::Busy(_))), "{third:?}");
        let_go.send(()).unwrap();
        waiter.join().unwrap();
        assert!(ReconcileLock::acquire(&path, Duration::ZERO).is_ok());
    }
}
