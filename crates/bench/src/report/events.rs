//! The figures of the events stage (stage 7): inserts end to end with and
//! without a webhook registered, and how soon events and deliveries
//! arrive after their process ended.

use serde_json::{Map, json};

#[derive(Debug, Default, Clone)]
pub struct EventFigures {
    /// Inserts end to end without a webhook (median of the rounds).
    pub without_rps: f64,
    /// The same with a webhook registered for the organization: the figure
    /// without times the median of the rounds' ratios.
    pub with_rps: f64,
    /// Each round's cost of the webhook, in percent (negative: faster).
    pub round_costs: Vec<f64>,
    /// Each round's added CPU of the services per record with the webhook,
    /// in percent (empty where `/proc` does not tell).
    pub cpu_round_costs: Vec<f64>,
    /// Batches of the pass with a webhook.
    pub batches: usize,
    /// Of those, deliveries received, and events consumed.
    pub delivered: usize,
    pub events: usize,
    /// From the last batch's end to the last delivery received.
    pub drained_after_ms: f64,
    /// Process end → webhook delivery received.
    pub webhook_p50_ms: f64,
    pub webhook_p99_ms: f64,
    /// Process end → event consumed from the exchange.
    pub event_p50_ms: f64,
    pub event_p99_ms: f64,
}

impl EventFigures {
    /// How much slower inserts were with the webhook, in percent.
    pub fn cost_percent(&self) -> f64 {
        if self.without_rps > 0.0 {
            (1.0 - self.with_rps / self.without_rps) * 100.0
        } else {
            0.0
        }
    }

    /// The median of the rounds' added CPU per record, in percent.
    pub fn cpu_cost_percent(&self) -> Option<f64> {
        (!self.cpu_round_costs.is_empty())
            .then(|| crate::load::percentile(&self.cpu_round_costs, 0.5))
    }

    pub(crate) fn rows(&self) -> Vec<[String; 3]> {
        let rounds = |costs: &[f64]| {
            costs
                .iter()
                .map(|c| format!("{c:+.1} %"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        vec![
            [
                "end to end, inserts without a webhook (median of the rounds)".into(),
                format!("{:.0} records/s", self.without_rps),
                String::new(),
            ],
            [
                "end to end, inserts with a webhook registered (median of the rounds' ratios)"
                    .into(),
                format!(
                    "{:.0} records/s ({:+.1} % slower; rounds {})",
                    self.with_rps,
                    self.cost_percent(),
                    rounds(&self.round_costs)
                ),
                "≤ 5 % slower".into(),
            ],
            [
                "CPU of the services per record with a webhook (median of the rounds)".into(),
                self.cpu_cost_percent().map_or_else(
                    || "not measured (no /proc)".into(),
                    |c| format!("{c:+.1} % (rounds {})", rounds(&self.cpu_round_costs)),
                ),
                String::new(),
            ],
            [
                "process end → event consumed from the exchange, under that load".into(),
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms ({} of {})",
                    self.event_p50_ms, self.event_p99_ms, self.events, self.batches
                ),
                String::new(),
            ],
            [
                "process end → webhook delivery received, under that load".into(),
                format!(
                    "p50 {:.1} ms, p99 {:.1} ms ({} of {}; last {:.0} ms after the last batch)",
                    self.webhook_p50_ms,
                    self.webhook_p99_ms,
                    self.delivered,
                    self.batches,
                    self.drained_after_ms
                ),
                String::new(),
            ],
        ]
    }

    pub(crate) fn add_json(&self, o: &mut Map<String, serde_json::Value>) {
        let tenth = |v: f64| (v * 10.0).round() / 10.0;
        o.insert(
            "events_without_webhook_insert_rps".into(),
            json!(self.without_rps.round()),
        );
        o.insert(
            "events_with_webhook_insert_rps".into(),
            json!(self.with_rps.round()),
        );
        o.insert(
            "events_webhook_cost_percent".into(),
            json!(tenth(self.cost_percent())),
        );
        o.insert(
            "events_event_p50_ms".into(),
            json!(tenth(self.event_p50_ms)),
        );
        o.insert(
            "events_event_p99_ms".into(),
            json!(tenth(self.event_p99_ms)),
        );
        o.insert(
            "events_webhook_p50_ms".into(),
            json!(tenth(self.webhook_p50_ms)),
        );
        o.insert(
            "events_webhook_p99_ms".into(),
            json!(tenth(self.webhook_p99_ms)),
        );
        o.insert(
            "events_webhook_cost_rounds_percent".into(),
            json!(
                self.round_costs
                    .iter()
                    .map(|c| tenth(*c))
                    .collect::<Vec<_>>()
            ),
        );
        o.insert(
            "events_webhook_cpu_cost_percent".into(),
            json!(self.cpu_cost_percent().map(tenth)),
        );
        o.insert(
            "events_webhook_cpu_cost_rounds_percent".into(),
            json!(
                self.cpu_round_costs
                    .iter()
                    .map(|c| tenth(*c))
                    .collect::<Vec<_>>()
            ),
        );
        o.insert("events_webhooks_delivered".into(), json!(self.delivered));
    }
}
