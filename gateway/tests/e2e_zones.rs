//! End to end, zones: the real `lanegate` binary on both IO backends, with
//! the demo game (echo and arena in every zone).
//!
//! Two zones, A and B. Where the host has two cores, two shards run (one
//! on each core, the gateway on core 0) and the zones land on different
//! shards (`zone % shards`: A = 7 on shard 1, B = 8 on shard 0); on one
//! core both zones share the one shard. Either way:
//!
//! - every echo comes back to the session that sent it, none to another;
//! - arena chat (`0x3000`, stream) from a zone-A player reaches the other
//!   zone-A player and never the zone-B player, and the other way round;
//! - arena positions (`0x2000`, datagram) arrive at the tick rate and list
//!   only same-zone players, although the zone-B player stands within the
//!   interest radius of the zone-A players.
//!
//! A chat relay is one broadcast that the gateway core fans out to every
//! recipient at once, on each recipient's ordered control stream. So once
//! a zone-A player has received a relay, a copy leaked to the zone-B
//! player would come before anything that player receives on its stream
//! later: the zone-B player's own relay, which it waits for, proves the
//! absence without a sleep.

#[macro_use]
mod e2e_support;

use std::collections::BTreeSet;
use std::time::Instant;

use e2e_support::{EXCHANGE_TIMEOUT, Gateway, Launch, next_matching, ticket};
use lanegate_client::{Client, Event, Transport, connect};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::wire::types;
use lanegate_shard::games::arena::{CHAT, POSITIONS, Positions};

const ZONE_A: u32 = 7;
const ZONE_B: u32 = 8;
/// Positions messages timed for the tick rate: about a second's worth.
const POSITIONS_TIMED: usize = 30;
/// `shards.tick_rate_hz` (the default).
const TICK_RATE_HZ: f64 = 30.0;

/// Where the arena spawns `player`: a copy of `Arena::spawn_point`
/// (`shard/src/games/arena.rs`) at the default 10000-unit zone. If that
/// changes, the "A sees A" assertion below fails and says so.
fn spawn_point(player: u64) -> (i64, i64) {
    let h = player.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 32) as i64 % 10_000, (h & 0xffff_ffff) as i64 % 10_000)
}

/// Three players, the first two for zone A and the third for zone B, who
/// all spawn within 1000 units of the first (the interest radius is 1500):
/// if zones leaked, the zone-B player would be in zone A's positions.
fn neighbours() -> (u64, u64, u64) {
    let base = 1000;
    let (x, y) = spawn_point(base);
    let mut near = (base + 1..base + 100_000).filter(|&p| {
        let (px, py) = spawn_point(p);
        (px - x).pow(2) + (py - y).pow(2) < 1000 * 1000
    });
    let a2 = near.next().expect("a neighbour");
    let b1 = near.next().expect("another neighbour");
    (base, a2, b1)
}

fn decode_chat(payload: &[u8]) -> (u64, String) {
    let (from, text) = payload.split_first_chunk::<8>().expect("from + text");
    (
        u64::from_be_bytes(*from),
        String::from_utf8(text.to_vec()).expect("UTF-8 chat"),
    )
}

/// Receives until the relay of `text` from `from` arrives; returns every
/// chat relay received on the way, that one included.
async fn chats_until(client: &mut Client, from: u64, text: &str) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    let found = next_matching(client, deadline, |e| match e {
        Event::Message {
            ty: CHAT,
            payload,
            transport,
        } => {
            assert_eq!(transport, Transport::Stream, "chat comes on the stream");
            let chat = decode_chat(&payload);
            let done = chat.0 == from && chat.1 == text;
            seen.push(chat);
            done.then_some(())
        }
        _ => None,
    })
    .await;
    assert!(
        found.is_some(),
        "player {} never got {text:?} from {from}; got {seen:?}",
        client.info().player.0
    );
    seen
}

/// Sends one echo per lane with payload `[tag; 12]`; each client then
/// collects its own four, and any echo carrying another tag fails.
async fn echoes_come_back_to_their_sender(clients: &mut [&mut Client]) {
    for (tag, client) in (1u8..).zip(clients.iter_mut()) {
        for ty in types::ECHO {
            client
                .send(ty, &[tag; 12], Transport::Datagram)
                .await
                .expect("sent");
        }
    }
    for (tag, client) in (1u8..).zip(clients.iter_mut()) {
        let mut want: BTreeSet<u16> = types::ECHO.into_iter().collect();
        let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
        let player = client.info().player.0;
        let done = next_matching(client, deadline, |e| match e {
            Event::Message { ty, payload, .. } if types::ECHO.contains(&ty) => {
                assert_eq!(
                    payload, [tag; 12],
                    "player {player} got an echo of {ty:#06x} it did not send"
                );
                want.remove(&ty);
                want.is_empty().then_some(())
            }
            _ => None,
        })
        .await;
        assert!(done.is_some(), "player {player}: no echo of {want:04x?}");
    }
}

/// The next positions message `client` gets, before the exchange timeout.
async fn next_positions(client: &mut Client) -> Positions {
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    next_matching(client, deadline, |e| match e {
        Event::Message {
            ty: POSITIONS,
            payload,
            transport,
        } => {
            assert_eq!(transport, Transport::Datagram);
            Some(Positions::decode(&payload).expect("well-formed positions"))
        }
        _ => None,
    })
    .await
    .unwrap_or_else(|| panic!("no positions for player {}", client.info().player.0))
}

fn players(p: &Positions) -> Vec<u64> {
    p.entries.iter().map(|e| e.player.0).collect()
}

async fn zones_reach_their_shard_and_stay_apart(backend: &str) {
    let two_cores = std::thread::available_parallelism().map_or(1, usize::from) >= 2;
    let extra = if two_cores {
        "cores = [0]\n[shards]\ncores = [0, 1]\n"
    } else {
        ""
    };
    let gw = Gateway::start(&Launch {
        backend,
        name: "zones",
        drain_timeout_ms: 5000,
        extra,
    });
    let (a1, a2, b1) = neighbours();
    let mut joined = Vec::new();
    for (player, zone) in [(a1, ZONE_A), (a2, ZONE_A), (b1, ZONE_B)] {
        let client = connect(gw.options(&ticket(player, zone)))
            .await
            .expect("welcome");
        assert_eq!(client.info().player, PlayerId(player));
        assert_eq!(
            client.info().zone,
            ZoneId(zone),
            "Welcome names the ticket's zone"
        );
        assert_eq!(f64::from(client.info().tick_rate_hz), TICK_RATE_HZ);
        joined.push(client);
    }
    let [mut ca1, mut ca2, mut cb1] = <[Client; 3]>::try_from(joined).expect("three");

    // Echoes, through both shards where there are two.
    echoes_come_back_to_their_sender(&mut [&mut ca1, &mut ca2, &mut cb1]).await;

    // Positions: A1 sees A2 (same zone, in range), never B1 (in range,
    // other zone). A2 joined before, but its join may land a tick later.
    let deadline = tokio::time::Instant::now() + EXCHANGE_TIMEOUT;
    let sees_a2 = async {
        loop {
            let p = next_positions(&mut ca1).await;
            assert!(
                !players(&p).contains(&b1),
                "zone B's player in zone A: {p:?}"
            );
            if players(&p).contains(&a2) {
                break p;
            }
        }
    };
    let first = tokio::time::timeout_at(deadline, sees_a2)
        .await
        .unwrap_or_else(|_| {
            panic!("A1 never saw A2 in its positions: did Arena::spawn_point change?")
        });
    let started = Instant::now();
    let mut last = first.tick;
    for _ in 1..POSITIONS_TIMED {
        let p = next_positions(&mut ca1).await;
        assert_eq!(
            p.entries[0].player,
            PlayerId(a1),
            "entry 0 is the recipient"
        );
        assert_eq!(players(&p)[1..], [a2], "exactly the other zone-A player");
        assert!(p.tick > last, "ticks increase: {} after {last}", p.tick);
        last = p.tick;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = (POSITIONS_TIMED - 1) as f64 / elapsed;
    let ticks = f64::from(last - first.tick);
    assert!(
        (0.6 * TICK_RATE_HZ..=1.5 * TICK_RATE_HZ).contains(&rate),
        "{POSITIONS_TIMED} positions in {elapsed:.3} s: {rate:.1}/s at {TICK_RATE_HZ} Hz"
    );
    assert!(
        ticks <= 1.5 * (POSITIONS_TIMED - 1) as f64,
        "{ticks} ticks passed for {POSITIONS_TIMED} positions: most never came"
    );
    let p = next_positions(&mut cb1).await;
    assert_eq!(players(&p), [b1], "zone B holds only B1");

    // Chat from A1: A2 and A1 get it; B1 then gets its own chat without
    // A1's before it.
    let hello_a = "hello zone seven";
    ca1.send(CHAT, hello_a.as_bytes(), Transport::Stream)
        .await
        .expect("sent");
    chats_until(&mut ca2, a1, hello_a).await;
    chats_until(&mut ca1, a1, hello_a).await;
    let hello_b = "hello zone eight";
    cb1.send(CHAT, hello_b.as_bytes(), Transport::Stream)
        .await
        .expect("sent");
    let b_saw = chats_until(&mut cb1, b1, hello_b).await;
    assert_eq!(
        b_saw,
        [(b1, hello_b.to_owned())],
        "zone A's chat leaked to B"
    );

    // And back: A2 answers; neither zone-A player got B1's chat before it.
    let reply = "zone seven only";
    ca2.send(CHAT, reply.as_bytes(), Transport::Stream)
        .await
        .expect("sent");
    for client in [&mut ca1, &mut ca2] {
        let saw = chats_until(client, a2, reply).await;
        assert_eq!(saw, [(a2, reply.to_owned())], "zone B's chat leaked to A");
    }
    for client in [ca1, ca2, cb1] {
        client.close().await;
    }
}

on_both_backends!(zones_reach_their_shard_and_stay_apart);
