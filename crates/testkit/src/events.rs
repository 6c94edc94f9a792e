//! Watching completion events and webhook deliveries from the outside: a
//! queue of one's own bound to the events exchange ([`EventTap`]), and a
//! small HTTP server that takes webhook deliveries ([`Receiver`]).

use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use lapin::options::{
    BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ExchangeKind};
use objectsync_infra::settings::AmqpSettings;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// An event as it came off the exchange.
#[derive(Debug, Clone)]
pub struct Event {
    pub message_id: Option<String>,
    pub routing_key: String,
    pub body: Value,
    /// 2 for persistent.
    pub delivery_mode: Option<u8>,
    pub content_type: Option<String>,
}

/// A durable quorum queue, `{prefix}.events.tap`, bound to the events
/// exchange with `#`: it keeps every event published after it was bound,
/// through broker restarts, until read with [`EventTap::drain`].
pub struct EventTap {
    amqp: AmqpSettings,
    exchange: String,
    pub queue: String,
}

impl EventTap {
    /// Declares the exchange (as the services do) and the queue, and binds
    /// them.
    pub async fn bind(amqp: &AmqpSettings) -> lapin::Result<Self> {
        let tap = Self {
            amqp: amqp.clone(),
            exchange: format!("{}.events", amqp.prefix),
            queue: format!("{}.events.tap", amqp.prefix),
        };
        let conn = tap.connect().await?;
        let channel = conn.create_channel().await?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                tap.exchange.as_str().into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        let queue = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(tap.queue.as_str().into(), queue, args)
            .await?;
        channel
            .queue_bind(
                tap.queue.as_str().into(),
                tap.exchange.as_str().into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let _ = conn.close(200, "OK".into()).await;
        Ok(tap)
    }

    async fn connect(&self) -> lapin::Result<Connection> {
        objectsync_infra::amqp::connect(&self.amqp, "event-tap").await
    }

    /// Takes every event waiting in the queue.
    pub async fn drain(&self) -> lapin::Result<Vec<Event>> {
        let conn = self.connect().await?;
        let channel = conn.create_channel().await?;
        let mut out = Vec::new();
        while let Some(msg) = channel
            .basic_get(self.queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await?
        {
            let d = &msg.delivery;
            out.push(Event {
                message_id: d.properties.message_id().as_ref().map(|s| s.to_string()),
                routing_key: d.routing_key.to_string(),
                body: serde_json::from_slice(&d.data).unwrap_or(Value::Null),
                delivery_mode: *d.properties.delivery_mode(),
                content_type: d.properties.content_type().as_ref().map(|s| s.to_string()),
            });
        }
        let _ = conn.close(200, "OK".into()).await;
        Ok(out)
    }

    /// Drains until `n` events came in all, or `within` passed.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Event> {
        let deadline = Instant::now() + within;
        let mut all = Vec::new();
        loop {
            all.extend(self.drain().await.expect("drain the event tap"));
            if all.len() >= n || Instant::now() >= deadline {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Deletes the queue.
    pub async fn delete(&self) -> lapin::Result<()> {
        let conn = self.connect().await?;
        let channel = conn.create_channel().await?;
        channel
            .queue_delete(self.queue.as_str().into(), QueueDeleteOptions::default())
            .await?;
        let _ = conn.close(200, "OK".into()).await;
        Ok(())
    }
}

/// A delivery a [`Receiver`] took, and when.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The status it was answered with.
    pub answered: u16,
}

#[derive(Default)]
struct Script {
    received: Mutex<Vec<Received>>,
    /// Answers 500 to this many requests first.
    fail_first: AtomicUsize,
    /// Then answers this (200 when 0).
    status: AtomicU16,
    /// Waits this long before answering (ms).
    delay_ms: AtomicU64,
    /// Requests that came in, answered or not yet.
    arrived: AtomicUsize,
}

/// A webhook receiver on a port of its own: records every request and
/// answers as scripted. Stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    script: Arc<Script>,
    _stop: tokio_util::sync::DropGuard,
}

async fn take(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    script.arrived.fetch_add(1, Ordering::SeqCst);
    let delay = script.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let failing = script
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = match (failing, script.status.load(Ordering::SeqCst)) {
        (true, _) => 500,
        (false, 0) => 200,
        (false, s) => s,
    };
    script
        .received
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Received {
            headers,
            body,
            at: chrono::Utc::now(),
            answered: status,
        });
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl Receiver {
    /// Starts one that answers 200 to everything.
    pub async fn start() -> Self {
        let script = Arc::new(Script::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let app = Router::new()
            .route("/hook", post(take))
            .with_state(script.clone());
        let stop = CancellationToken::new();
        tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        );
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            script,
            _stop: stop.drop_guard(),
        }
    }

    /// Answers 500 to the next `n` requests.
    pub fn fail_next(&self, n: usize) {
        self.script.fail_first.store(n, Ordering::SeqCst);
    }

    /// Answers `status` from now on (after any [`Receiver::fail_next`]).
    pub fn answer(&self, status: u16) {
        self.script.status.store(status, Ordering::SeqCst);
    }

    /// Waits `delay` before answering each request.
    pub fn delay(&self, delay: Duration) {
        self.script
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests that came in so far, answered or not yet.
    pub fn arrived(&self) -> usize {
        self.script.arrived.load(Ordering::SeqCst)
    }

    /// Every request answered so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.script
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `n` requests were answered (or `within` passed); all of
    /// them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
