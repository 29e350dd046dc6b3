//! The shard runtime, driven by the deterministic harness.

mod harness;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::{Call, Got, Harness, Recorder, RecorderFactory, messages, small_cfg, tag};
use lanegate_common::ids::{CoreId, PlayerId, ShardId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::wire::{Transport, types};
use lanegate_shard::clock::{Clock, VirtualClock};
use lanegate_shard::config::ShardConfig;
use lanegate_shard::game::{Game, Incoming, Outbox};
use lanegate_shard::games::arena::{self, Input, Positions};
use lanegate_shard::games::{Arena, ArenaConfig, Demo};
use lanegate_shard::health::{StallEvent, Watchdog};
use lanegate_shard::port::PortError;
use lanegate_shard::runtime::Shard;
use lanegate_shard::wiring;

/// A game type in each lane of the default table.
const TY: [u16; 4] = [0x1001, 0x2001, 0x3001, 0x4001];

fn recorders(cfg: ShardConfig, cores: u16, shards: u16) -> (Harness<Recorder>, RecorderFactory) {
    recorders_with(cfg, cores, shards, RecorderFactory::new())
}

fn recorders_with(
    cfg: ShardConfig,
    cores: u16,
    shards: u16,
    f: RecorderFactory,
) -> (Harness<Recorder>, RecorderFactory) {
    let g = f.clone();
    (Harness::new(cfg, cores, shards, move |s| g.make(s)), f)
}

fn send(h: &mut Harness<Recorder>, core: u16, player: u64, zone: u32, lane: Lane, n: u32) {
    h.send(
        core,
        player,
        zone,
        lane,
        Transport::Datagram,
        TY[lane.index()],
        &tag(player, lane, n),
    )
    .expect("room in the ring");
}

#[test]
fn lanes_drain_in_order_within_per_lane_budgets() {
    let cfg = ShardConfig {
        lane_budget_per_tick: [2; 4],
        inbox_slots_max: [8; 4],
        ..small_cfg()
    };
    let (mut h, rec) = recorders(cfg, 1, 1);
    h.join(0, 1, 0);
    h.step();
    // Pushed lowest lane first: the shard still hands critical over first.
    for lane in Lane::ALL.into_iter().rev() {
        for n in 0..3 {
            send(&mut h, 0, 1, 0, lane, n);
        }
    }
    rec.clear();
    h.step();
    let order: Vec<Vec<u8>> = messages(&rec.calls()).into_iter().map(|m| m.3).collect();
    let expect: Vec<Vec<u8>> = Lane::ALL
        .into_iter()
        .flat_map(|l| (0..2).map(move |n| tag(1, l, n)))
        .collect();
    assert_eq!(order, expect);
    assert_eq!(h.health(0).inbox_depth, [1, 1, 1, 1]);
    rec.clear();
    h.step();
    let order: Vec<Vec<u8>> = messages(&rec.calls()).into_iter().map(|m| m.3).collect();
    let expect: Vec<Vec<u8>> = Lane::ALL.into_iter().map(|l| tag(1, l, 2)).collect();
    assert_eq!(order, expect);
    assert_eq!(h.health(0).inbox_depth, [0; 4]);
}

#[test]
fn a_bulk_flood_cannot_delay_critical() {
    // Ring of 256: bulk may fill half of it. Bulk inbox of 16, 8 per tick.
    let cfg = ShardConfig {
        lane_budget_per_tick: [64, 64, 64, 8],
        inbox_slots_max: [64, 64, 64, 16],
        ..small_cfg()
    };
    let (mut h, rec) = recorders(cfg, 1, 1);
    h.join(0, 1, 0);
    h.step();
    let mut refused = 0;
    for n in 0..1000 {
        match h.send(
            0,
            1,
            0,
            Lane::Bulk,
            Transport::Datagram,
            TY[3],
            &tag(1, Lane::Bulk, n),
        ) {
            Ok(()) => {}
            Err(PortError::Full { lane: Lane::Bulk }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // The producer learned at once, and counted it.
    assert_eq!(refused, 1000 - 128);
    assert_eq!(h.ports[0].lost(), [0, 0, 0, 872]);
    // Critical still has room in the ring...
    for n in 0..5 {
        send(&mut h, 0, 1, 0, Lane::Critical, n);
    }
    rec.clear();
    h.step();
    // ...and is handed over first, within the same tick.
    let got = messages(&rec.calls());
    let lanes: Vec<Lane> = got.iter().map(|m| m.2).collect();
    assert_eq!(&lanes[..5], &[Lane::Critical; 5]);
    assert_eq!(&lanes[5..], &[Lane::Bulk; 8]);
    // The shard kept 16 bulk messages and shed the rest of the 128.
    let health = h.health(0);
    assert_eq!(health.inbound_shed, [0, 0, 0, 112]);
    assert_eq!(health.inbox_depth, [0, 0, 0, 8]);
}

#[test]
fn players_are_routed_to_their_zones_shard() {
    let f = RecorderFactory {
        echo: true,
        ..RecorderFactory::new()
    };
    let (mut h, rec) = recorders_with(small_cfg(), 2, 2, f);
    // Zone 20 would default to shard 0; place it on shard 1 first.
    h.dir.place(ZoneId(20), ShardId(1)).unwrap();
    for port in &mut h.ports {
        port.place(ZoneId(20), ShardId(1));
    }
    assert_eq!(h.join(0, 1, 10), ShardId(0));
    assert_eq!(h.join(1, 2, 11), ShardId(1));
    assert_eq!(h.join(1, 3, 20), ShardId(1));
    h.step();
    send(&mut h, 0, 1, 10, Lane::High, 0);
    send(&mut h, 1, 2, 11, Lane::High, 0);
    send(&mut h, 1, 3, 20, Lane::High, 0);
    h.step();
    let by_player: BTreeMap<PlayerId, ShardId> = messages(&rec.calls())
        .into_iter()
        .map(|m| (m.1, m.0))
        .collect();
    assert_eq!(by_player[&PlayerId(1)], ShardId(0));
    assert_eq!(by_player[&PlayerId(2)], ShardId(1));
    assert_eq!(by_player[&PlayerId(3)], ShardId(1));
    // Replies come back to the core that holds each session.
    let replies = |got: Vec<Got>| -> Vec<(PlayerId, ShardId)> {
        got.into_iter()
            .filter_map(|g| match g {
                Got::Unicast { player, shard, .. } => Some((player, shard)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(replies(h.take(0)), [(PlayerId(1), ShardId(0))]);
    let mut core1 = replies(h.take(1));
    core1.sort();
    assert_eq!(
        core1,
        [(PlayerId(2), ShardId(1)), (PlayerId(3), ShardId(1))]
    );
}

#[test]
fn a_zone_moves_under_traffic_without_loss_or_reorder() {
    let (mut h, rec) = recorders(small_cfg(), 2, 2);
    // Zone 0 lives on shard 0 with players on both cores; zone 2 stays there.
    let players: [(u16, u64, u32); 5] = [(0, 1, 0), (0, 2, 0), (1, 3, 0), (1, 4, 0), (0, 5, 2)];
    for &(core, p, zone) in &players {
        h.join(core, p, zone);
    }
    let mut sent: BTreeMap<(u64, usize), u32> = BTreeMap::new();
    let mut traffic = |h: &mut Harness<Recorder>, extra: &[(u16, u64, u32)]| {
        for &(core, p, zone) in players.iter().chain(extra) {
            for lane in Lane::ALL {
                let n = sent.entry((p, lane.index())).or_default();
                send(h, core, p, zone, lane, *n);
                *n += 1;
            }
        }
    };
    for _ in 0..3 {
        traffic(&mut h, &[]);
        h.step();
    }
    // Traffic that is in the rings when the move begins.
    traffic(&mut h, &[]);
    let plan = h.begin_move(ZoneId(0), ShardId(1), CoreId(1));
    // A player joins during the move: held with the rest.
    h.join(1, 6, 0);
    let mut moved_at = None;
    for step in 0..12 {
        traffic(&mut h, &[(1, 6, 0)]);
        h.step();
        if moved_at.is_none() && !h.finished.is_empty() {
            moved_at = Some(step);
        }
    }
    for _ in 0..3 {
        h.step();
    }
    assert_eq!(h.finished, [plan]);
    assert_eq!(h.dir.shard_of(ZoneId(0)), ShardId(1));
    assert!(
        moved_at.is_some_and(|s| s < 4),
        "the move took {moved_at:?} steps"
    );
    assert_eq!(h.ports[0].held(ZoneId(0)), 0);

    let calls = rec.calls();
    // Exported by shard 0 once, imported by shard 1 with every member.
    let exports: Vec<&Call> = calls
        .iter()
        .filter(|c| matches!(c, Call::Export { .. }))
        .collect();
    assert_eq!(
        exports,
        [&Call::Export {
            shard: ShardId(0),
            zone: ZoneId(0)
        }]
    );
    let import = calls
        .iter()
        .find_map(|c| match c {
            Call::Import {
                shard,
                state,
                players,
                ..
            } => Some((*shard, state.clone(), players.clone())),
            _ => None,
        })
        .expect("imported");
    assert_eq!(import.0, ShardId(1));
    assert_eq!(import.1, b"state of 0");
    assert_eq!(
        import.2,
        [PlayerId(1), PlayerId(2), PlayerId(3), PlayerId(4)]
    );

    // Every message arrived once, in order within each player's lane.
    let mut seen: BTreeMap<(u64, usize), Vec<u32>> = BTreeMap::new();
    let mut shards_of: BTreeMap<u64, Vec<ShardId>> = BTreeMap::new();
    for (shard, player, lane, payload) in messages(&calls) {
        let text = String::from_utf8(payload).unwrap();
        let n: u32 = text.rsplit('-').next().unwrap().parse().unwrap();
        seen.entry((player.0, lane.index())).or_default().push(n);
        let s = shards_of.entry(player.0).or_default();
        if s.last() != Some(&shard) {
            s.push(shard);
        }
    }
    for (key, &count) in &sent {
        assert_eq!(
            seen[key],
            (0..count).collect::<Vec<_>>(),
            "player/lane {key:?}"
        );
    }
    // Zone 0's players went from shard 0 to shard 1 exactly once; player 6
    // only ever saw shard 1; zone 2 never moved.
    for p in 1..=4 {
        assert_eq!(shards_of[&p], [ShardId(0), ShardId(1)], "player {p}");
    }
    assert_eq!(shards_of[&6], [ShardId(1)]);
    assert_eq!(shards_of[&5], [ShardId(0)]);
    assert_eq!(h.ports[0].lost(), [0; 4]);
    assert_eq!(h.ports[1].lost(), [0; 4]);
}

#[test]
fn a_panicking_game_is_replaced_and_its_zones_reset() {
    let (mut h, rec) = recorders(small_cfg(), 2, 2);
    h.join(0, 1, 0);
    h.join(1, 2, 0);
    h.join(0, 3, 1); // shard 1
    h.step();
    h.send(0, 1, 0, Lane::Normal, Transport::Stream, TY[2], b"poison")
        .unwrap();
    send(&mut h, 1, 2, 0, Lane::Bulk, 0);
    send(&mut h, 0, 3, 1, Lane::Bulk, 0);
    rec.clear();
    let reports = h.step();
    assert_eq!(reports[0].restarts, 1);
    assert_eq!(reports[1].restarts, 0);
    assert_eq!(h.health(0).restarts, 1);
    assert_eq!(h.health(1).restarts, 0);

    // Both cores with players in zone 0 were told; nobody in zone 1 was.
    for core in 0..2 {
        let resets: Vec<Got> = h
            .take(core)
            .into_iter()
            .filter(|g| matches!(g, Got::ZoneReset { .. }))
            .collect();
        assert_eq!(
            resets,
            [Got::ZoneReset {
                shard: ShardId(0),
                zone: ZoneId(0)
            }]
        );
    }
    // The fresh instance (3: shards made 1 and 2) got both players back,
    // and the message after the poison.
    let calls = rec.calls();
    let joins: Vec<(u32, PlayerId)> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Join {
                instance, player, ..
            } => Some((*instance, *player)),
            _ => None,
        })
        .collect();
    assert_eq!(joins, [(3, PlayerId(1)), (3, PlayerId(2))]);
    assert!(calls.contains(&Call::Message {
        shard: ShardId(0),
        instance: 3,
        zone: ZoneId(0),
        player: PlayerId(2),
        lane: Lane::Bulk,
        payload: tag(2, Lane::Bulk, 0),
    }));
    // Shard 1 never noticed.
    assert!(calls.contains(&Call::Message {
        shard: ShardId(1),
        instance: 2,
        zone: ZoneId(1),
        player: PlayerId(3),
        lane: Lane::Bulk,
        payload: tag(3, Lane::Bulk, 0),
    }));
    // The players are still connected and keep playing.
    rec.clear();
    send(&mut h, 0, 1, 0, Lane::Critical, 1);
    h.step();
    assert_eq!(messages(&rec.calls()).len(), 1);
}

#[test]
fn overruns_are_counted_on_the_virtual_clock() {
    // The game spends virtual time on the harness's own clock.
    let clock = VirtualClock::new();
    let f = RecorderFactory {
        clock: Some(clock.clone()),
        ..RecorderFactory::new()
    };
    *f.tick_cost.lock().unwrap() = Duration::from_millis(8);
    let g = f.clone();
    let mut h = Harness::with_clock(clock, small_cfg(), 1, 1, move |s| g.make(s));
    let reports = h.step();
    assert!(reports[0].overrun, "{reports:?}");
    assert_eq!(reports[0].took, Duration::from_millis(8));
    *f.tick_cost.lock().unwrap() = Duration::from_millis(1);
    let reports = h.step();
    assert!(!reports[0].overrun);
    let health = h.health(0);
    assert_eq!(health.overruns, 1);
    assert_eq!(health.ticks, 2);
    assert_eq!(health.tick_max_us, 8_000);
    assert_eq!(health.tick_p50_us, 1_000);
}

/// A game whose tick blocks until told to go on: an infinite loop that a
/// test can end.
struct Stuck {
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl Game for Stuck {
    fn on_message(&mut self, _: &mut Outbox<'_>, _: Incoming<'_>) {}

    fn on_tick(&mut self, _: &mut Outbox<'_>) {
        let _ = self.entered.send(());
        let _ = self.release.recv();
    }
}

#[test]
fn the_watchdog_reports_a_stalled_shard() {
    let cfg = small_cfg();
    let clock = VirtualClock::new();
    let mut links = wiring::build(&cfg, 1, 1, clock.now()).unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let mut game = Some(Stuck {
        entered: entered_tx,
        release: release_rx,
    });
    let mut shard = Shard::new(links.shards.remove(0), &cfg, move || {
        game.take().expect("the stuck game does not panic")
    });
    let slot = shard.health_slot();
    let mut dog = Watchdog::new(vec![slot.clone()], cfg.stall_after());
    let shard_clock = clock.clone();
    let worker = std::thread::spawn(move || {
        shard.run_tick(&shard_clock);
        shard
    });
    // The tick is running (the game said so) and will not end by itself.
    entered_rx.recv().unwrap();
    let mut events = Vec::new();
    dog.check(clock.now() + cfg.stall_after() / 2, |e| events.push(e));
    assert!(events.is_empty());
    dog.check(clock.now() + cfg.stall_after(), |e| events.push(e));
    assert_eq!(
        events,
        [StallEvent::Stalled {
            shard: ShardId(0),
            running: cfg.stall_after()
        }]
    );
    let health = slot.read();
    assert!(health.stalled);
    assert_eq!(health.stalls, 1);
    // The game returns: the watchdog sees the shard recover.
    release_tx.send(()).unwrap();
    let _shard = worker.join().unwrap();
    dog.check(clock.now() + cfg.stall_after() * 2, |e| events.push(e));
    assert_eq!(events[1], StallEvent::Recovered { shard: ShardId(0) });
    let health = slot.read();
    assert!(!health.stalled);
    assert_eq!(health.stalls, 1);
}

fn positions_for(got: &[Got], player: u64) -> Vec<Positions> {
    got.iter()
        .filter_map(|g| match g {
            Got::Unicast {
                player: p,
                ty: arena::POSITIONS,
                payload,
                lane,
                transport,
                ..
            } if p.0 == player => {
                assert_eq!(*lane, Lane::High);
                assert_eq!(*transport, Transport::Datagram);
                Some(Positions::decode(payload).expect("well-formed positions"))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn arena_sends_each_player_only_the_players_near_them() {
    let acfg = ArenaConfig {
        interest_radius_units: 1_000,
        ..ArenaConfig::default()
    };
    let mut h = Harness::new(small_cfg(), 1, 1, move |_| Demo::new(acfg));
    for p in 1..=3 {
        h.join(0, p, 0);
    }
    h.step();
    let game = h.shards[0].game_mut();
    let zone = ZoneId(0);
    game.arena_mut().teleport(zone, PlayerId(1), 1_000, 1_000);
    game.arena_mut().teleport(zone, PlayerId(2), 1_600, 1_800);
    game.arena_mut().teleport(zone, PlayerId(3), 8_000, 8_000);
    h.take(0);
    h.step();
    let got = h.take(0);
    let ids = |p: u64| -> Vec<u64> {
        let msgs = positions_for(&got, p);
        assert_eq!(msgs.len(), 1);
        msgs[0].entries.iter().map(|e| e.player.0).collect()
    };
    assert_eq!(ids(1), [1, 2]);
    assert_eq!(ids(2), [2, 1]);
    assert_eq!(ids(3), [3]);

    // Inputs steer: full right at 400 units/s for one 10 ms tick = 4 units.
    let input = Input {
        seq: 9,
        dx: 127,
        dy: 0,
    };
    h.send(
        0,
        1,
        0,
        Lane::Critical,
        Transport::Datagram,
        arena::INPUT,
        &input.encode(),
    )
    .unwrap();
    h.step();
    let got = h.take(0);
    let mine = &positions_for(&got, 1)[0];
    assert_eq!(mine.ack_seq, 9);
    assert_eq!((mine.entries[0].x, mine.entries[0].y), (1_004, 1_000));
    assert_eq!(h.shards[0].game().arena().stats().inputs, 1);
}

#[test]
fn demo_echoes_each_lane_on_its_transport_and_relays_chat() {
    let mut h = Harness::new(small_cfg(), 1, 1, |_| Demo::default());
    h.join(0, 1, 0);
    h.join(0, 2, 0);
    h.step();
    h.take(0);
    for (i, ty) in types::ECHO.into_iter().enumerate() {
        let lane = Lane::from_index(i).unwrap();
        let transport = if i % 2 == 0 {
            Transport::Datagram
        } else {
            Transport::Stream
        };
        h.send(
            0,
            1,
            0,
            lane,
            transport,
            ty,
            &[u8::try_from(i).unwrap(); 300],
        )
        .unwrap();
    }
    h.send(
        0,
        2,
        0,
        Lane::Normal,
        Transport::Stream,
        arena::CHAT,
        "gg".as_bytes(),
    )
    .unwrap();
    h.step();
    let got = h.take(0);
    let echoes: Vec<(u16, Lane, Transport, usize)> = got
        .iter()
        .filter_map(|g| match g {
            Got::Unicast {
                player: PlayerId(1),
                ty,
                lane,
                transport,
                payload,
                ..
            } if types::ECHO.contains(ty) => {
                assert!(payload.iter().all(|&b| usize::from(b) == lane.index()));
                Some((*ty, *lane, *transport, payload.len()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        echoes,
        [
            (
                types::ECHO_CRITICAL,
                Lane::Critical,
                Transport::Datagram,
                300
            ),
            (types::ECHO_HIGH, Lane::High, Transport::Stream, 300),
            (types::ECHO_NORMAL, Lane::Normal, Transport::Datagram, 300),
            (types::ECHO_BULK, Lane::Bulk, Transport::Stream, 300),
        ]
    );
    let chat: Vec<&Got> = got
        .iter()
        .filter(|g| {
            matches!(
                g,
                Got::Broadcast {
                    ty: arena::CHAT,
                    ..
                }
            )
        })
        .collect();
    let mut expect = 2u64.to_be_bytes().to_vec();
    expect.extend_from_slice(b"gg");
    assert_eq!(
        chat,
        [&Got::Broadcast {
            shard: ShardId(0),
            zone: ZoneId(0),
            ty: arena::CHAT,
            payload: expect
        }]
    );
}

#[test]
fn an_arena_zone_keeps_its_positions_across_a_move() {
    let mut h = Harness::new(small_cfg(), 1, 2, |_| Demo::default());
    h.join(0, 1, 0);
    h.join(0, 2, 0);
    h.step();
    h.shards[0]
        .game_mut()
        .arena_mut()
        .teleport(ZoneId(0), PlayerId(1), 4_321, 1_234);
    h.begin_move(ZoneId(0), ShardId(1), CoreId(0));
    for _ in 0..4 {
        h.step();
    }
    assert_eq!(h.finished.len(), 1);
    assert_eq!(
        h.shards[1].game().arena().position(ZoneId(0), PlayerId(1)),
        Some((4_321, 1_234))
    );
    assert_eq!(
        h.shards[0].game().arena().position(ZoneId(0), PlayerId(1)),
        None
    );
    // Positions now come from shard 1.
    h.take(0);
    h.step();
    let from: Vec<ShardId> = h
        .take(0)
        .into_iter()
        .filter_map(|g| match g {
            Got::Unicast {
                shard,
                ty: arena::POSITIONS,
                ..
            } => Some(shard),
            _ => None,
        })
        .collect();
    assert_eq!(from, [ShardId(1), ShardId(1)]);
}

#[test]
fn the_same_inputs_give_the_same_trace() {
    let run = || {
        let mut h = Harness::new(small_cfg(), 2, 2, |_| Arena::default());
        for p in 0..40u64 {
            h.join(u16::from(p % 2 == 0), p, u32::try_from(p % 3).unwrap());
        }
        let mut trace = Vec::new();
        for step in 0..10u32 {
            for p in 0..40u64 {
                let input = Input {
                    seq: step,
                    dx: i8::try_from(p % 7).unwrap() * 18 - 54,
                    dy: 40,
                };
                let _ = h.send(
                    u16::from(p % 2 == 0),
                    p,
                    u32::try_from(p % 3).unwrap(),
                    Lane::Critical,
                    Transport::Datagram,
                    arena::INPUT,
                    &input.encode(),
                );
            }
            h.step();
            trace.push((h.take(0), h.take(1)));
        }
        trace
    };
    assert_eq!(run(), run());
}

#[test]
fn the_tick_reads_time_only_from_its_clock() {
    // Sanity for the harness: a tick that spends no virtual time took zero.
    let (mut h, _rec) = recorders(small_cfg(), 1, 1);
    let before = Instant::now();
    let reports = h.step();
    assert_eq!(reports[0].took, Duration::ZERO);
    assert!(before.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_zone_move_through_full_rings_delivers_what_was_accepted_in_order() {
    // Rings of 16 slots: pushes are refused, control entries wait in the
    // backlogs, held entries are released over several turns.
    let cfg = ShardConfig {
        ring_slots_max: 16,
        ..small_cfg()
    };
    let (mut h, rec) = recorders(cfg, 2, 2);
    let players: [(u16, u64); 4] = [(0, 1), (0, 2), (1, 3), (1, 4)];
    for &(core, p) in &players {
        h.join(core, p, 0);
    }
    h.step();
    let mut accepted: BTreeMap<(u64, usize), Vec<u32>> = BTreeMap::new();
    let mut refused = 0;
    let mut n = 0;
    for step in 0..30 {
        if step == 5 {
            h.begin_move(ZoneId(0), ShardId(1), CoreId(0));
        }
        for _ in 0..2 {
            for &(core, p) in &players {
                for lane in Lane::ALL {
                    let payload = tag(p, lane, n);
                    match h.send(
                        core,
                        p,
                        0,
                        lane,
                        Transport::Datagram,
                        TY[lane.index()],
                        &payload,
                    ) {
                        Ok(()) => accepted.entry((p, lane.index())).or_default().push(n),
                        Err(PortError::Full { .. }) => refused += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            n += 1;
        }
        h.step();
    }
    // The held backlog drains at most a ring per tick: let it.
    for _ in 0..60 {
        h.step();
    }
    assert_eq!(h.finished.len(), 1, "the move completed");
    assert_eq!(h.ports[0].held(ZoneId(0)) + h.ports[1].held(ZoneId(0)), 0);
    assert!(refused > 0, "the rings were full at times");
    let mut got: BTreeMap<(u64, usize), Vec<u32>> = BTreeMap::new();
    for (_, player, lane, payload) in messages(&rec.calls()) {
        let text = String::from_utf8(payload).unwrap();
        let n: u32 = text.rsplit('-').next().unwrap().parse().unwrap();
        got.entry((player.0, lane.index())).or_default().push(n);
    }
    assert_eq!(got, accepted);
    let lost: u64 = h.ports.iter().flat_map(|p| p.lost()).sum();
    assert_eq!(lost, refused);
}

/// Between ticks, a message pass hands new messages to the game and flushes
/// its replies at once, without advancing the simulation: an echo does not
/// wait for the next tick, and the arena's tick-driven positions do not move.
#[test]
fn a_message_pass_replies_between_ticks_without_ticking() {
    let mut h = Harness::new(small_cfg(), 1, 1, |_| Demo::default());
    h.join(0, 1, 0);
    h.step();
    h.take(0);
    let ticks_before = h.health(0).ticks;

    h.send(
        0,
        1,
        0,
        Lane::Critical,
        Transport::Datagram,
        types::ECHO_CRITICAL,
        &[7; 8],
    )
    .unwrap();
    h.clock.advance(Duration::from_micros(500));
    h.shards[0].run_messages(&h.clock);
    h.poll();
    let got = h.take(0);
    assert!(
        got.iter().any(|g| matches!(
            g,
            Got::Unicast { player: PlayerId(1), ty: types::ECHO_CRITICAL, payload, .. } if payload == &[7; 8]
        )),
        "the echo did not leave before the next tick: {got:?}"
    );
    assert!(
        !got.iter().any(|g| matches!(
            g,
            Got::Unicast {
                ty: arena::POSITIONS,
                ..
            }
        )),
        "a message pass must not run the game's tick: {got:?}"
    );
    assert_eq!(h.shards[0].publish_health().ticks, ticks_before);
}
