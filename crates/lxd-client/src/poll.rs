//! Waiting for an instance to get somewhere (answer an exec, take a file, show an
//! address): one backoff under a deadline for every such wait, with no fixed sleeps.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How the pause between attempts grows.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

/// Runs `attempt` until it succeeds, pausing `first`, then twice as long each time up to
/// `max`; gives up with the last attempt's error once the next pause would end after
/// `deadline`.
pub async fn retry_until<T, E, F, Fut>(
    deadline: Instant,
    backoff: Backoff,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut pause = backoff.first;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() + pause > deadline => return Err(e),
            Err(_) => {}
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(backoff.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const FAST: Backoff = Backoff {
        first: Duration::from_millis(1),
        max: Duration::from_millis(4),
    };

    #[tokio::test]
    async fn retries_until_an_attempt_succeeds() {
        let tries = Cell::new(0);
        let deadline = Instant::now() + Duration::from_secs(1);
        let got = retry_until(deadline, FAST, || async {
            tries.set(tries.get() + 1);
            if tries.get() < 5 {
                Err(tries.get())
            } else {
                Ok("up")
            }
        })
        .await;
        assert_eq!(got, Ok("up"));
        assert_eq!(tries.get(), 5);
    }

    #[tokio::test]
    async fn gives_up_with_the_last_error_at_the_deadline() {
        let tries = Cell::new(0);
        let start = Instant::now();
        let deadline = start + Duration::from_millis(50);
        let got: Result<(), u32> = retry_until(deadline, FAST, || async {
            tries.set(tries.get() + 1);
            Err(tries.get())
        })
        .await;
        assert_eq!(got, Err(tries.get()));
        // Pauses of 1, 2, then 4 ms fit several attempts in 50 ms, however loaded the
        // machine; and none starts once the next pause would end after the deadline.
        assert!(tries.get() >= 3, "{} attempts", tries.get());
        assert!(
            Instant::now() < deadline + Duration::from_secs(1),
            "kept trying past the deadline"
        );
    }
}
