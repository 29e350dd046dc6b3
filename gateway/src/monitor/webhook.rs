//! Alerts out to an operator's webhook (`monitor.webhook_url`): each alert
//! event POSTed as one JSON object, from a thread of its own, never from a
//! datapath core and never blocking the monitor.
//!
//! ```text
//!  monitor thread ──try_send──▶ bounded queue (monitor.webhook_queue_max)
//!                                   │  full: dropped, counted
//!                                   ▼
//!                         webhook thread: POST (monitor.webhook_timeout_ms),
//!                         retried with doubling backoff up to
//!                         monitor.webhook_retries_max times, then counted failed
//! ```
//!
//! The client is `ureq` (blocking, rustls): one request at a time is all a
//! stream of alerts needs, and a blocking client on its own thread keeps
//! the async runtimes out of the gateway. A receiver that answers 2xx has
//! the event; anything else (an error status, a refused connection, a
//! timeout) is retried. What happened is in [`WebhookCounters`], which the
//! metrics endpoint publishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::warn;

/// First wait before a retry; each later one doubles.
const RETRY_BACKOFF_FIRST: Duration = Duration::from_millis(200);
/// Longest wait between two tries.
const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One alert event as the webhook receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertEvent {
    /// `anomaly_raised`, `anomaly_cleared` or `forecast_warning`.
    pub kind: &'static str,
    /// The series, as `lanegate_anomaly_active{series=...}` names it.
    pub series: String,
    /// When, seconds since the Unix epoch.
    pub at_unix_s: f64,
    /// The series' value then (a forecast warning: the upper band).
    pub value: f64,
    /// What the model expected.
    pub expected: f64,
    /// The band the value left (or, for a forecast, the capacity share).
    pub low: f64,
    /// Upper end of the band.
    pub high: f64,
    /// Anomaly score, 0 to 1.
    pub score: f64,
    /// A sentence for a person.
    pub message: String,
}

impl AlertEvent {
    /// The JSON object the webhook receives: every field by its name.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": self.kind,
            "series": self.series,
            "at_unix_s": self.at_unix_s,
            "value": self.value,
            "expected": self.expected,
            "low": self.low,
            "high": self.high,
            "score": self.score,
            "message": self.message,
        })
    }
}

/// What the webhook did since start.
#[derive(Debug, Default)]
pub struct WebhookCounters {
    /// Events the receiver acknowledged (2xx).
    pub sent: AtomicU64,
    /// Events given up on after every retry.
    pub failed: AtomicU64,
    /// Tries that failed and were retried.
    pub retries: AtomicU64,
    /// Events dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// How to reach the webhook.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// `monitor.webhook_url`.
    pub url: String,
    /// `monitor.webhook_queue_max`.
    pub queue_max: usize,
    /// `monitor.webhook_timeout_ms`, for the whole of one try.
    pub timeout: Duration,
    /// `monitor.webhook_retries_max`.
    pub retries_max: u32,
}

/// The monitor's handle: queues events for the webhook thread.
#[derive(Debug)]
pub struct Webhook {
    tx: Option<SyncSender<AlertEvent>>,
    counters: Arc<WebhookCounters>,
    thread: Option<JoinHandle<()>>,
}

impl Webhook {
    /// Starts the webhook thread.
    pub fn start(cfg: WebhookConfig) -> std::io::Result<Webhook> {
        let (tx, rx) = sync_channel(cfg.queue_max.max(1));
        let counters = Arc::new(WebhookCounters::default());
        let c = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("lanegate-webhook".into())
            .spawn(move || deliver_all(&cfg, &rx, &c))?;
        Ok(Webhook {
            tx: Some(tx),
            counters,
            thread: Some(thread),
        })
    }

    /// Queues `event`; never blocks. A full queue drops it (counted, and
    /// logged at most once per drop burst by the caller's rate limit).
    pub fn send(&self, event: AlertEvent) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        match tx.try_send(event) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The counters, for the metrics endpoint.
    pub fn counters(&self) -> Arc<WebhookCounters> {
        Arc::clone(&self.counters)
    }

    /// Delivers what is queued (each with its retries) and stops the
    /// thread.
    pub fn stop(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        // Dropping the sender ends the thread after the queue; not joined
        // here, so a drop never waits on a slow receiver.
        self.tx = None;
    }
}

fn deliver_all(cfg: &WebhookConfig, rx: &Receiver<AlertEvent>, counters: &WebhookCounters) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(cfg.timeout))
        .http_status_as_error(false)
        .build()
        .into();
    while let Ok(event) = rx.recv() {
        let body = event.to_json().to_string().into_bytes();
        let mut backoff = RETRY_BACKOFF_FIRST;
        let mut tries = 0;
        loop {
            let outcome = agent
                .post(&cfg.url)
                .header("content-type", "application/json")
                .send(&body[..]);
            let error = match outcome {
                Ok(resp) if resp.status().is_success() => None,
                Ok(resp) => Some(format!("status {}", resp.status())),
                Err(e) => Some(e.to_string()),
            };
            let Some(error) = error else {
                counters.sent.fetch_add(1, Ordering::Relaxed);
                break;
            };
            if tries >= cfg.retries_max {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                warn!(
                    url = %cfg.url,
                    series = %event.series,
                    kind = event.kind,
                    tries = tries + 1,
                    %error,
                    "webhook gave up on an alert"
                );
                break;
            }
            tries += 1;
            counters.retries.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(RETRY_BACKOFF_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use super::*;

    fn event(series: &str) -> AlertEvent {
        AlertEvent {
            kind: "anomaly_raised",
            series: series.to_owned(),
            at_unix_s: 1_700_000_000.0,
            value: 10.0,
            expected: 2.0,
            low: 1.0,
            high: 3.0,
            score: 0.99,
            message: "test".to_owned(),
        }
    }

    /// A tiny HTTP/1.1 receiver: answers each request with the next of
    /// `statuses` (then 200), and hands every body it got to the test.
    fn receiver(statuses: Vec<u16>) -> (String, Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let status = statuses.next().unwrap_or(200);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            }
        });
        (url, rx)
    }

    fn cfg(url: String, retries_max: u32) -> WebhookConfig {
        WebhookConfig {
            url,
            queue_max: 4,
            timeout: Duration::from_secs(2),
            retries_max,
        }
    }

    #[test]
    fn an_event_arrives_as_json_after_a_failed_try() {
        let (url, bodies) = receiver(vec![503]);
        let hook = Webhook::start(cfg(url, 3)).unwrap();
        assert!(hook.send(event("connections")));
        let first = bodies.recv_timeout(Duration::from_secs(5)).unwrap();
        let second = bodies.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first, second, "the same event, retried");
        let json: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(json["kind"], "anomaly_raised");
        assert_eq!(json["series"], "connections");
        assert_eq!(json["score"], 0.99);
        let counters = hook.counters();
        hook.stop();
        assert_eq!(counters.sent.load(Ordering::Relaxed), 1);
        assert_eq!(counters.retries.load(Ordering::Relaxed), 1);
        assert_eq!(counters.failed.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_receiver_that_is_gone_fails_after_the_retries() {
        // A port nothing listens on: every try is refused at once.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let hook = Webhook::start(cfg(format!("http://127.0.0.1:{port}/"), 1)).unwrap();
        hook.send(event("sessions"));
        let counters = hook.counters();
        hook.stop();
        assert_eq!(counters.failed.load(Ordering::Relaxed), 1);
        assert_eq!(counters.retries.load(Ordering::Relaxed), 1);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        // A receiver that accepts and never answers holds the thread in
        // its first try; the queue (4) fills behind it.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let hook = Webhook::start(WebhookConfig {
            timeout: Duration::from_millis(300),
            retries_max: 0,
            ..cfg(url, 0)
        })
        .unwrap();
        let sent = (0..20)
            .filter(|i| hook.send(event(&format!("s{i}"))))
            .count();
        assert!(sent <= 6, "{sent} queued");
        let counters = hook.counters();
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 20 - sent as u64);
        drop(listener);
        hook.stop();
        assert_eq!(
            counters.failed.load(Ordering::Relaxed) + counters.sent.load(Ordering::Relaxed),
            sent as u64
        );
    }
}
