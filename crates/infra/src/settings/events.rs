//! Settings of completion events and webhook deliveries (the workers
//! publish and deliver them; ingest checks webhook URLs when they are
//! registered).

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// How often a worker's relay looks for events it was not told about
    /// (ended by another process: an operator, another worker that died
    /// before publishing) (ms). Events a worker ends itself are published
    /// at once.
    pub poll_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Time a receiver has to answer a delivery (ms); then the attempt
    /// failed.
    pub timeout_ms: u64,
    /// Delay before the first retry (ms); each retry waits twice as long as
    /// the one before, up to `retry_max_ms`, with jitter (±25 %).
    pub retry_initial_ms: u64,
    /// Longest delay between two attempts (ms).
    pub retry_max_ms: u64,
    /// How long a delivery is retried after its first attempt (s); the
    /// first attempt that fails after this marks it failed.
    pub retry_for_secs: u64,
    /// Attempts one worker makes at once to one endpoint: a slow or dead
    /// endpoint holds at most these, never another endpoint's.
    pub per_endpoint: u32,
    /// Attempts one worker makes at once in all.
    pub max_in_flight: u32,
    /// Whether webhook URLs may reach loopback, private, link-local and
    /// other non-public addresses. A webhook is a request the server makes
    /// on a tenant's behalf from inside the operator's network (SSRF): set
    /// this to false where those who register webhooks should not reach
    /// internal services. Checked when a webhook is registered (an address
    /// in the URL) and on every attempt (the addresses its host resolves
    /// to).
    pub allow_private_addresses: bool,
}

impl WebhookSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    /// The delay before attempt `attempts + 1`, given `attempts` failed
    /// ones and `jitter` in [0, 1): `retry_initial_ms · 2^(attempts − 1)`,
    /// at most `retry_max_ms`, times 0.75 to 1.25.
    pub fn retry_delay(&self, attempts: u32, jitter: f64) -> Duration {
        let exp = attempts.saturating_sub(1).min(40);
        let base = (self.retry_initial_ms as f64) * 2f64.powi(exp as i32);
        let capped = base.min(self.retry_max_ms as f64);
        Duration::from_millis((capped * (0.75 + jitter.clamp(0.0, 1.0) / 2.0)) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WebhookSettings {
        WebhookSettings {
            timeout_ms: 10_000,
            retry_initial_ms: 5_000,
            retry_max_ms: 3_600_000,
            retry_for_secs: 86_400,
            per_endpoint: 4,
            max_in_flight: 64,
            allow_private_addresses: true,
        }
    }

    #[test]
    fn retries_back_off_exponentially_with_jitter_up_to_the_cap() {
        let s = settings();
        assert!(
            s.retry_delay(1, 0.999) < Duration::from_secs(30),
            "first retry within 30 s"
        );
        assert_eq!(s.retry_delay(1, 0.5), Duration::from_secs(5));
        assert_eq!(s.retry_delay(2, 0.5), Duration::from_secs(10));
        assert_eq!(s.retry_delay(3, 0.0), Duration::from_millis(15_000));
        assert_eq!(s.retry_delay(30, 0.5), Duration::from_secs(3600));
        assert_eq!(s.retry_delay(u32::MAX, 0.5), Duration::from_secs(3600));
    }

    #[test]
    fn the_default_schedule_keeps_retrying_for_a_day() {
        let s = settings();
        let (mut spent, mut attempts) = (Duration::ZERO, 1);
        while spent < Duration::from_secs(s.retry_for_secs) {
            spent += s.retry_delay(attempts, 0.5);
            attempts += 1;
        }
        assert!(
            (25..40).contains(&attempts),
            "{attempts} attempts over a day"
        );
    }
}
