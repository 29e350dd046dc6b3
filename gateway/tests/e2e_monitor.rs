//! The monitor against a running gateway (issue 14 §2–4), end to end: the
//! real `lanegate` with bots, sampling every second (the shortest
//! `monitor.sample_interval_ms`) and learning from ten samples, so that a
//! test sees it learn, alert and forecast in half a minute.
//!
//! 1. A few players play until the `connections` series has learnt
//!    (`lanegate_monitor_series_learning{series="connections"} 0`).
//! 2. A crowd arrives at once: `connections` leaves its band, the alert is
//!    raised (`lanegate_anomaly_active{series="connections"} 1`), a JSON
//!    event reaches the webhook (a real HTTP receiver on loopback),
//!    `/status.json` lists the alert, forecasts are published.
//! 3. The gateway drains on SIGTERM and writes its baselines file; a new
//!    gateway on the same file loads them (its log says so) instead of
//!    learning from scratch.

#[allow(unused_macros)]
#[macro_use]
mod e2e_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e_support::swarm::{block_on, play, serial, settle, start, swarm};
use e2e_support::{http_get, metric};

/// A webhook receiver: answers 200 to every POST and hands each body on.
fn receiver() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}/hook", listener.local_addr().expect("bound"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().expect("a clone"));
            let mut len = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (url, rx)
}

fn config(url: &str, baselines: &Path) -> String {
    format!(
        "[shards]\ngame = \"echo\"\n\
         [monitor]\nsample_interval_ms = 1000\nlearning_samples_min = 10\n\
         suppress_after_clear_samples = 5\nforecast_step_s = 60\n\
         webhook_url = \"{url}\"\nbaselines_path = \"{}\"\n",
        baselines.display()
    )
}

fn connections_metric(text: &str, name: &str) -> f64 {
    metric(text, name, &[("series", "connections")]).unwrap_or(f64::NAN)
}

#[test]
fn the_monitor_learns_alerts_forecasts_and_remembers() {
    let _one = serial();
    let (url, hooks) = receiver();
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("monitor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a tmp dir");
    let baselines = dir.join("baselines.bin");
    let _ = std::fs::remove_file(&baselines);
    let mut gw = start("monitor", 5000, &config(&url, &baselines));

    block_on(async {
        // 1. Four players, steady, until `connections` has learnt.
        let steady = tokio::spawn(play(swarm(&gw, 4, Duration::from_secs(30), 1000), || {}));
        let metrics = gw.metrics.expect("metrics on");
        let learnt = tokio::task::spawn_blocking(move || {
            let begin = Instant::now();
            while begin.elapsed() < Duration::from_secs(25) {
                if let Ok((200, text)) = http_get(metrics, "/metrics")
                    && connections_metric(&text, "lanegate_monitor_series_learning") == 0.0
                {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            false
        });
        assert!(learnt.await.expect("the poller"), "connections learnt");

        // 2. Forty more arrive at once: ten times the learnt level.
        let crowd = play(swarm(&gw, 40, Duration::from_secs(8), 2000), || {}).await;
        assert_eq!(crowd.failed, 0, "{crowd}");
        let _ = steady.await;
    });
    let raised = hooks
        .recv_timeout(Duration::from_secs(20))
        .expect("a webhook event");
    let event: serde_json::Value = serde_json::from_str(&raised).expect("JSON");
    assert_eq!(event["kind"], "anomaly_raised", "{event}");
    assert_eq!(event["series"], "connections", "{event}");
    assert!(event["value"].as_f64().unwrap_or(0.0) > event["high"].as_f64().unwrap_or(f64::MAX));
    assert!(
        event["message"]
            .as_str()
            .is_some_and(|m| m.contains("connections"))
    );
    let log = gw.log();
    assert!(log.contains("anomaly raised"), "{log}");
    // The page's JSON listed it while it was raised, or lists it now; the
    // metrics say what the model said for the last sample.
    let text = gw.scrape();
    for name in [
        "lanegate_forecast_connections",
        "lanegate_forecast_connections_upper",
        "lanegate_forecast_capacity_connections",
        "lanegate_monitor_learning_progress",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
    assert_eq!(
        metric(
            &text,
            "lanegate_webhook_events_total",
            &[("outcome", "failed")]
        ),
        Some(0.0)
    );
    let (code, json) = http_get(gw.metrics.expect("metrics"), "/status.json").expect("status.json");
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert!(doc["alerts"].is_array(), "{}", doc["alerts"]);
    assert!(
        doc["learning"]["progress"].is_number(),
        "{}",
        doc["learning"]
    );
    let connections = doc["forecast"]["series"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["series"] == "connections"))
        .expect("a connections forecast");
    assert!(!connections["points"].as_array().expect("points").is_empty());
    assert!(
        !connections["history"]
            .as_array()
            .expect("history")
            .is_empty()
    );

    // 3. Drain: the baselines are written; a new gateway loads them.
    gw.signal("TERM");
    assert!(
        gw.wait_exit(Duration::from_secs(15))
            .is_some_and(|s| s.success())
    );
    let written = std::fs::metadata(&baselines).map(|m| m.len()).unwrap_or(0);
    assert!(written > 0, "the baselines file was written");
    let again = start("monitor-again", 5000, &config(&url, &baselines));
    settle(&again, "the second gateway's first sample", |t| {
        t.contains("lanegate_monitor_learning_progress")
    });
    let log = again.log();
    assert!(log.contains("baselines loaded"), "{log}");
}
