//! The gateway as a library: started in-process through
//! `lanegate_gateway::runtime::Gateway` on an ephemeral port, with a game
//! of the test's own (not a built-in), played by a real QUIC client, then
//! drained through the handle. Both IO backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lanegate_client::{CloseCode, ConnectOptions, Event, ServerVerify, Transport, connect};
use lanegate_common::config::{Config, HostInfo};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_gateway::runtime::{GameStart, Gateway, Plan};
use lanegate_shard::{Game, Incoming, Msg, Outbox};

const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers every message with its payload reversed, on the same type and
/// transport.
struct Reverse;

impl Game for Reverse {
    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
        let mut reversed = [0u8; 64];
        let n = msg.payload.len().min(reversed.len());
        reversed[..n].copy_from_slice(&msg.payload[..n]);
        reversed[..n].reverse();
        let reply = Msg {
            ty: msg.ty,
            transport: msg.transport,
            payload: &reversed[..n],
        };
        let _ = out.send(msg.player, reply);
    }
}

fn plan(backend: &str) -> Plan {
    let host = HostInfo { cores: 2 };
    let config = Config::from_toml_str(&format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nio_backend = \"{backend}\"\ndrain_timeout_ms = 10000\n\
         [observability]\nmetrics_listen = \"127.0.0.1:0\"\n"
    ))
    .expect("a valid config");
    config.validate(&host).expect("valid for the host");
    Plan::new(config, &host).expect("a plan")
}

fn ticket(player: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(player),
            zone: ZoneId(1),
            issued_at_s: now,
            expires_at_s: now + 3600,
        })
        .expect("mintable")
}

async fn plays_a_session_and_drains(backend: &str) {
    let made = Arc::new(AtomicUsize::new(0));
    let factory = {
        let made = Arc::clone(&made);
        move |_start: GameStart| {
            made.fetch_add(1, Ordering::Relaxed);
            Reverse
        }
    };
    let gateway = Gateway::start(&plan(backend), factory, Arc::new(AtomicBool::new(false)))
        .expect("the gateway starts");
    assert_ne!(
        gateway.local_addr().port(),
        0,
        "the port picked is reported"
    );
    assert!(gateway.metrics_addr().is_some());
    assert_eq!(gateway.backends().len(), 1);
    assert!(made.load(Ordering::Relaxed) >= 1, "one game per shard");

    let verify = ServerVerify::fingerprint_hex(gateway.fingerprint()).expect("a pin");
    let mut opts = ConnectOptions::new(gateway.local_addr(), "localhost", ticket(7), verify);
    opts.handshake_timeout = EXCHANGE_TIMEOUT;
    let mut client = connect(opts).await.expect("welcome");
    for transport in [Transport::Datagram, Transport::Stream] {
        client
            .send(0x1000, &[1, 2, 3], transport)
            .await
            .expect("sent");
        let reply = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            loop {
                if let Event::Message { ty, payload, .. } = client.recv().await.expect("up") {
                    break (ty, payload);
                }
            }
        })
        .await
        .expect("the game answers");
        assert_eq!(reply, (0x1000, vec![3, 2, 1]), "over {transport:?}");
    }

    let started = Instant::now();
    gateway.begin_drain();
    let closed = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        loop {
            if let Err(e) = client.recv().await {
                break e;
            }
        }
    })
    .await
    .expect("the client hears of the drain");
    assert_eq!(
        closed.closed().map(|c| c.code),
        Some(CloseCode::ServerDraining)
    );
    let joined = tokio::task::spawn_blocking(move || gateway.join())
        .await
        .expect("joined");
    joined.expect("a clean drain");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the drain ended when the client left, not at the 10 s timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_uring_plays_a_session_and_drains() {
    plays_a_session_and_drains("io_uring").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portable_plays_a_session_and_drains() {
    plays_a_session_and_drains("portable").await;
}

#[test]
fn a_taken_port_fails_the_start_and_names_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
    let host = HostInfo { cores: 2 };
    let mut config = Config::default();
    config.gateway.listen = "127.0.0.1:0".parse().expect("an address");
    config.observability.metrics_listen = Some(taken.local_addr().expect("bound"));
    config.validate(&host).expect("valid");
    let plan = Plan::new(config, &host).expect("a plan");
    let err = Gateway::start(&plan, |_| Reverse, Arc::new(AtomicBool::new(false)))
        .err()
        .expect("the metrics port is taken");
    assert!(
        err.to_string()
            .contains(&taken.local_addr().expect("bound").to_string()),
        "{err}"
    );
}
