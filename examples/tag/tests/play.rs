//! Tag played through the client SDK against a gateway started in-process
//! with two shards, as `tag-server serve` runs it: four players in three
//! zones chat, see each other, learn who is "it", and one of them runs
//! east through three portals (zone 1 on shard 1 → 2 on shard 0 → 3 on
//! shard 1 → 0 on shard 0), after which the zone-0 chat reaches them.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanegate_client::{Client, ConnectOptions, Event, ServerVerify, Transport, connect};
use lanegate_common::config::{Config, HostInfo, parse_game_config};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_example_tag::wire::{self, Input, Positions};
use lanegate_example_tag::{Tag, TagConfig};
use lanegate_gateway::runtime::{Gateway, Plan};

const WAIT: Duration = Duration::from_secs(10);

/// A small, fast arena: a portal run takes well under a second.
const FILE: &str = "[gateway]\nlisten = \"127.0.0.1:0\"\ncores = [0]\n\
                    [shards]\ncores = [0, 1]\nzones = \"0-3\"\n\
                    [observability]\nmetrics_listen = \"off\"\n\
                    [game]\narena_m = 10\nspeed_mps = 12\nview_m = 4\n";

fn start() -> Gateway {
    let host = HostInfo { cores: 2 };
    let config = Config::from_toml_str(FILE).expect("a valid config");
    config.validate(&host).expect("valid for the host");
    let rules: TagConfig = parse_game_config(FILE).expect("valid rules");
    let plan = Plan::new(config, &host).expect("a plan");
    assert_eq!(plan.cores.shards.len(), 2, "two shards");
    Gateway::start(
        &plan,
        move |start| Tag::new(&rules, start),
        Arc::new(AtomicBool::new(false)),
    )
    .expect("the gateway starts")
}

async fn join(gateway: &Gateway, player: u64, zone: u32) -> Client {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let ticket = KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(player),
            zone: ZoneId(zone),
            issued_at_s: now,
            expires_at_s: now + 3600,
        })
        .expect("mintable");
    let verify = ServerVerify::fingerprint_hex(gateway.fingerprint()).expect("a pin");
    let opts = ConnectOptions::new(gateway.local_addr(), "localhost", ticket, verify);
    let client = connect(opts).await.expect("welcome");
    assert_eq!(client.info().zone, ZoneId(zone));
    client
}

/// Reads events until `pick` accepts one; fails after [`WAIT`].
async fn until<T>(client: &mut Client, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = client.recv().await.expect("the session stays up");
            if let Some(t) = pick(&event) {
                return t;
            }
        }
    })
    .await
    .expect("the awaited event arrives")
}

fn chat_from(event: &Event) -> Option<(PlayerId, String)> {
    match event {
        Event::Message { ty, payload, .. } if *ty == wire::CHAT_FROM => {
            wire::decode_chat_from(payload).map(|(p, t)| (p, t.to_owned()))
        }
        _ => None,
    }
}

fn positions(event: &Event) -> Option<Positions> {
    match event {
        Event::Message { ty, payload, .. } if *ty == wire::POSITIONS => Positions::decode(payload),
        _ => None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn four_players_in_three_zones_on_two_shards() {
    let gateway = start();
    // Zones 0 and 2 are on shard 0, 1 and 3 on shard 1.
    let mut one = join(&gateway, 1, 0).await;
    let mut two = join(&gateway, 2, 0).await;
    let mut three = join(&gateway, 3, 1).await;
    let mut four = join(&gateway, 4, 2).await;

    // Player 1 joined zone 0 first: "it".
    let it = until(&mut two, |e| match e {
        Event::Message { ty, payload, .. } if *ty == wire::TAGGED => wire::decode_tagged(payload),
        _ => None,
    })
    .await;
    assert_eq!(it.0, PlayerId(1));

    // Positions: themselves first; player 2 (1.5 m away) is in view of 1.
    let seen = until(&mut one, |e| positions(e).filter(|p| p.entries.len() >= 2)).await;
    assert_eq!(seen.entries[0].player, PlayerId(1));
    assert_eq!(seen.entries[1].player, PlayerId(2));
    assert_eq!(seen.it, 1);
    // Interest: a zone-1 player sees nobody else.
    let alone = until(&mut three, positions).await;
    assert_eq!(alone.entries.len(), 1);

    // Chat stays in its zone.
    one.send(wire::CHAT, b"tag!", Transport::Stream)
        .await
        .expect("sent");
    let heard = until(&mut two, chat_from).await;
    assert_eq!(heard, (PlayerId(1), "tag!".to_owned()));

    // Player 3 runs east through three portals, one zone change per shard
    // crossing, and arrives in zone 0.
    let mut seq = 0;
    for want in [ZoneId(2), ZoneId(3), ZoneId(0)] {
        let zone = tokio::time::timeout(WAIT, async {
            let mut tick = tokio::time::interval(Duration::from_millis(30));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        seq += 1;
                        let input = Input { seq, dx: 127, dy: 0 };
                        three.send(wire::INPUT, &input.encode(), Transport::Datagram)
                            .await
                            .expect("sent");
                    }
                    event = three.recv() => {
                        if let Event::ZoneChanged { zone, .. } = event.expect("up") {
                            break zone;
                        }
                    }
                }
            }
        })
        .await
        .expect("the portal moves the player");
        assert_eq!(zone, want);
        assert_eq!(three.info().zone, want);
    }
    // Stop and chat: zone 0's players hear it, zone 2's does not.
    seq += 1;
    let stop = Input { seq, dx: 0, dy: 0 };
    three
        .send(wire::INPUT, &stop.encode(), Transport::Datagram)
        .await
        .expect("sent");
    three
        .send(wire::CHAT, b"made it", Transport::Stream)
        .await
        .expect("sent");
    let heard = until(&mut one, |e| {
        chat_from(e).filter(|(p, _)| *p == PlayerId(3))
    })
    .await;
    assert_eq!(heard.1, "made it");
    assert_eq!(
        until(&mut three, chat_from).await,
        (PlayerId(3), "made it".to_owned())
    );
    // Player 4 in zone 2 heard nothing of zone 0: its next chat event is
    // its own.
    four.send(wire::CHAT, b"anyone?", Transport::Stream)
        .await
        .expect("sent");
    assert_eq!(
        until(&mut four, chat_from).await,
        (PlayerId(4), "anyone?".to_owned())
    );

    for c in [one, two, three, four] {
        c.close().await;
    }
    gateway.begin_drain();
    gateway.join().expect("a clean exit");
}
