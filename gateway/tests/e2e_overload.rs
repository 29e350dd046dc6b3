//! The gateway cores' degradation ladder, live: a gateway in-process whose
//! `[overload]` counts one handshake a second as full load, so each new
//! connection pushes its core up the ladder. Established play goes on
//! (`critical` is never shed), `bulk` stops while the level is up, a
//! newcomer at protect is refused with `SERVER_FULL`, and once the
//! handshakes stop the levels come back down and `bulk` flows again.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanegate_client::{Client, CloseCode, ConnectOptions, Event, ServerVerify, Transport, connect};
use lanegate_common::config::{Config, HostInfo};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_common::wire::types;
use lanegate_gateway::runtime::{Gateway, Plan};
use lanegate_shard::games::Echo;

const WAIT: Duration = Duration::from_secs(15);

fn start() -> Gateway {
    let host = HostInfo { cores: 2 };
    let config = Config::from_toml_str(
        "[gateway]\nlisten = \"127.0.0.1:0\"\nstate_dir = \"off\"\n\
         [observability]\nmetrics_listen = \"off\"\n\
         [overload]\nsample_ms = 50\ndwell_ms = 500\nstuck_after_ms = 30000\n\
         handshakes_per_s_full = 1\n",
    )
    .expect("a valid config");
    config.validate(&host).expect("valid for the host");
    let plan = Plan::new(config, &host).expect("a plan");
    Gateway::start(&plan, |_| Echo, Arc::new(AtomicBool::new(false))).expect("starts")
}

fn options(gateway: &Gateway, player: u64) -> ConnectOptions {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let ticket = KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(player),
            zone: ZoneId(1),
            issued_at_s: now,
            expires_at_s: now + 3600,
        })
        .expect("mintable");
    let verify = ServerVerify::fingerprint_hex(gateway.fingerprint()).expect("a pin");
    ConnectOptions::new(gateway.local_addr(), "localhost", ticket, verify)
}

/// Sends one critical and one bulk echo datagram tagged `n`; returns which
/// came back within 300 ms.
async fn echo_both(client: &mut Client, n: u8) -> (bool, bool) {
    for ty in [types::ECHO_CRITICAL, types::ECHO_BULK] {
        client
            .send(ty, &[n], Transport::Datagram)
            .await
            .expect("sent");
    }
    let (mut critical, mut bulk) = (false, false);
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            if let Ok(Event::Message { ty, payload, .. }) = client.recv().await
                && payload == [n]
            {
                critical |= ty == types::ECHO_CRITICAL;
                bulk |= ty == types::ECHO_BULK;
                if critical && bulk {
                    return;
                }
            }
        }
    })
    .await;
    (critical, bulk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_push_the_core_up_the_ladder_and_it_comes_back() {
    let gateway = start();
    let mut player = connect(options(&gateway, 1)).await.expect("welcome");
    // Its handshake alone is twenty times full load: the core climbs a
    // level a sample until it protects itself. Newcomers get in until then
    // (each adds to the load), and the first refused is refused with
    // SERVER_FULL.
    let mut admitted = Vec::new();
    let refused = tokio::time::timeout(WAIT, async {
        for p in 2u64.. {
            match connect(options(&gateway, p)).await {
                Ok(client) => admitted.push(client),
                Err(e) => return e,
            }
        }
        unreachable!("player ids run out first")
    })
    .await
    .expect("the core protects itself");
    assert_eq!(
        refused.closed().map(|c| c.code),
        Some(CloseCode::ServerFull),
        "{refused}"
    );
    assert!(admitted.len() < 200, "protect came within a few samples");
    // Loaded: critical is answered, bulk is shed.
    let (critical, bulk) = echo_both(&mut player, 1).await;
    assert!(critical, "critical is never shed");
    assert!(!bulk, "bulk is shed while the level is up");
    // No more handshakes: one step down per dwell, back to normal, and bulk
    // is answered again.
    let recovered = tokio::time::timeout(WAIT, async {
        let mut n = 2u8;
        loop {
            let (critical, bulk) = echo_both(&mut player, n).await;
            assert!(critical, "critical answered at every level");
            if bulk {
                return n;
            }
            n = n.wrapping_add(1);
        }
    })
    .await
    .expect("the levels come back down");
    assert!(recovered > 2, "bulk came back only after the dwell");
    player.close().await;
    for c in admitted {
        c.close().await;
    }
    let joined = tokio::task::spawn_blocking(move || gateway.join())
        .await
        .expect("joined");
    joined.expect("a clean exit");
}
