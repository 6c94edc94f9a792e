//! The explicit reconnect loop every broker consumer runs (the workers'
//! batch consumer and dead-letter tracker, ingest's inbox): lapin's own
//! recovery is not relied on.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// How a consuming session ended.
pub enum Session {
    /// `cancel` fired and the session wound down.
    Stopped,
    /// The broker went away; `consumed` says whether the session got as far
    /// as consuming (which resets the reconnect backoff).
    Lost { error: lapin::Error, consumed: bool },
}

/// The pauses between reconnects: from 250 ms, doubling, up to 10 s, for as
/// long as it takes.
const RECONNECT_BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(250))
    .with_max_delay(RECONNECT_MAX_PAUSE)
    .without_max_times();
const RECONNECT_MAX_PAUSE: Duration = Duration::from_secs(10);

/// Runs `session` again and again, with a growing pause after each broker
/// failure, until `cancel` fires.
pub async fn reconnecting<F, Fut>(what: &str, cancel: &CancellationToken, mut session: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Session>,
{
    let mut pauses = RECONNECT_BACKOFF.build();
    while !cancel.is_cancelled() {
        match session().await {
            Session::Stopped => break,
            Session::Lost { error, consumed } => {
                if consumed {
                    pauses = RECONNECT_BACKOFF.build();
                }
                let delay = pauses.next().unwrap_or(RECONNECT_MAX_PAUSE);
                let error = super::describe(&error);
                tracing::warn!(%error, retry_in = ?delay, "{what} lost the broker");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_pauses_double_from_a_quarter_second_to_ten_seconds_and_go_on() {
        // In whole milliseconds: backon multiplies in f32, off by a few ns.
        let pauses: Vec<u128> = RECONNECT_BACKOFF
            .build()
            .take(9)
            .map(|p| p.as_millis())
            .collect();
        assert_eq!(
            pauses,
            [250, 500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]
        );
        assert!(
            RECONNECT_BACKOFF.build().nth(1_000).is_some(),
            "never gives up"
        );
    }
}
