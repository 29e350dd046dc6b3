//! The thread driver on real threads and the real clock: ticks run by
//! themselves, the watchdog reports a stall and, supervising, fails a stuck
//! shard over and keeps it fenced, and shutdown does not hang on a stuck
//! shard.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use lanegate_common::config::Config;
use lanegate_common::ids::{PlayerId, SessionId, ShardId, ZoneId};
use lanegate_common::lanes::{Lane, LaneTable};
use lanegate_common::link::ToGateway;
use lanegate_common::wire::{Transport, types};
use lanegate_shard::config::ShardConfig;
use lanegate_shard::game::{Game, Incoming, Outbox};
use lanegate_shard::games::{Demo, Echo};
use lanegate_shard::health::StallEvent;
use lanegate_shard::port::GatewayPort;
use lanegate_shard::runtime::Shard;
use lanegate_shard::{wiring, worker};

fn cfg() -> ShardConfig {
    ShardConfig {
        tick_rate_hz: 100,
        tick_budget_us: 5_000,
        stall_after_ms: 100,
        ring_slots_max: 256,
        pool_datagram_bufs_max: 16,
        pool_stream_bufs_max: 2,
        health_every_ticks: 1,
        // The budgets these tests were written against (normal 1024, not
        // the configuration's 512).
        lane_budget_per_tick: [4096, 2048, 1024, 256],
        ..ShardConfig::from_config(&Config::default(), Vec::new(), LaneTable::default())
    }
}

/// Polls the port until `want` says yes, for at most 10 s of real time.
fn poll_until(port: &mut GatewayPort, mut want: impl FnMut(ShardId, &ToGateway) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = false;
    while !found && Instant::now() < deadline {
        port.poll(usize::MAX, |s, e| found |= want(s, e));
        std::thread::yield_now();
    }
    found
}

#[test]
fn shard_threads_tick_by_themselves() {
    let cfg = cfg();
    let mut links = wiring::build(&cfg, 1, 2, Instant::now()).unwrap();
    let shards: Vec<Shard<Demo>> = links
        .shards
        .drain(..)
        .map(|ends| Shard::new(ends, &cfg, Demo::default))
        .collect();
    let mut port = GatewayPort::new(links.cores.remove(0), &cfg);
    let threads = worker::spawn(shards, &cfg, |_| {}).unwrap();
    for (p, zone) in [(1, 0), (2, 1)] {
        port.join(SessionId(p), PlayerId(p), ZoneId(zone)).unwrap();
        port.send(
            Instant::now(),
            SessionId(p),
            PlayerId(p),
            ZoneId(zone),
            Lane::Critical,
            Transport::Datagram,
            types::ECHO_CRITICAL,
            b"ping",
        )
        .unwrap();
    }
    let mut echoed = Vec::new();
    assert!(poll_until(&mut port, |shard, e| {
        if let ToGateway::Unicast { player, body, .. } = e
            && body.ty == types::ECHO_CRITICAL
        {
            assert_eq!(body.payload.as_slice(), b"ping");
            echoed.push((player.0, shard.0));
        }
        echoed.len() == 2
    }));
    echoed.sort();
    assert_eq!(echoed, [(1, 0), (2, 1)]);
    assert!(threads.health_slots()[0].read().ticks > 0);
    assert!(threads.stop(Duration::from_secs(5)).is_empty());
}

/// Blocks in one tick until released.
struct Blocker {
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
    ticks: u64,
}

impl Game for Blocker {
    fn on_message(&mut self, _: &mut Outbox<'_>, _: Incoming<'_>) {}

    fn on_tick(&mut self, _: &mut Outbox<'_>) {
        self.ticks += 1;
        if self.ticks == 3 {
            let _ = self.entered.send(());
            let _ = self.release.recv();
        }
    }
}

#[test]
fn the_watchdog_thread_flags_a_stalled_shard_and_stop_leaves_it() {
    let cfg = cfg();
    let mut links = wiring::build(&cfg, 1, 1, Instant::now()).unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let mut game = Some(Blocker {
        entered: entered_tx,
        release: release_rx,
        ticks: 0,
    });
    let shard = Shard::new(links.shards.remove(0), &cfg, move || {
        game.take().expect("the blocker does not panic")
    });
    let (events_tx, events_rx) = mpsc::channel();
    let threads = worker::spawn(vec![shard], &cfg, move |e| {
        let _ = events_tx.send(e);
    })
    .unwrap();
    entered_rx.recv().unwrap();
    let event = events_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(matches!(
        event,
        StallEvent::Stalled { shard: ShardId(0), running } if running >= cfg.stall_after()
    ));
    let slot = threads.health_slots()[0].clone();
    assert!(slot.read().stalled);
    // Shutdown does not hang on it: the stuck shard is reported and left.
    assert_eq!(threads.stop(Duration::from_millis(50)), [ShardId(0)]);
    // Let the thread finish, so the test process exits cleanly.
    release_tx.send(()).unwrap();
}

/// Panics on every message.
struct Fragile;

impl Game for Fragile {
    fn on_message(&mut self, _: &mut Outbox<'_>, _: Incoming<'_>) {
        panic!("fragile");
    }
}

#[test]
fn a_panic_on_one_shard_thread_leaves_the_other_running() {
    let cfg = cfg();
    let mut links = wiring::build(&cfg, 1, 2, Instant::now()).unwrap();
    let fragile = Shard::new(links.shards.remove(0), &cfg, || {
        Box::new(Fragile) as Box<dyn Game>
    });
    let sturdy = Shard::new(links.shards.remove(0), &cfg, || {
        Box::new(Echo) as Box<dyn Game>
    });
    let mut port = GatewayPort::new(links.cores.remove(0), &cfg);
    let threads = worker::spawn(vec![fragile, sturdy], &cfg, |_| {}).unwrap();
    for (p, zone) in [(1, 0), (2, 1)] {
        port.join(SessionId(p), PlayerId(p), ZoneId(zone)).unwrap();
    }
    let send = |port: &mut GatewayPort, p: u64, zone: u32| {
        port.send(
            Instant::now(),
            SessionId(p),
            PlayerId(p),
            ZoneId(zone),
            Lane::Normal,
            Transport::Stream,
            types::ECHO_NORMAL,
            b"x",
        )
        .unwrap();
    };
    send(&mut port, 1, 0);
    assert!(poll_until(&mut port, |_, e| matches!(
        e,
        ToGateway::ZoneReset { zone: ZoneId(0) }
    )));
    send(&mut port, 2, 1);
    assert!(poll_until(&mut port, |shard, e| shard == ShardId(1)
        && matches!(
            e,
            ToGateway::Unicast {
                player: PlayerId(2),
                ..
            }
        )));
    let deadline = Instant::now() + Duration::from_secs(10);
    while threads.health_slots()[0].read().restarts == 0 && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(threads.health_slots()[0].read().restarts, 1);
    assert_eq!(threads.health_slots()[1].read().restarts, 0);
    assert!(threads.stop(Duration::from_secs(5)).is_empty());
}

/// A hosted shard runs on the caller's thread: its message passes answer
/// at once, its ticks follow the pacer, and the watchdog watches it.
#[test]
fn hosted_shard_answers_on_the_host_thread_and_is_watched() {
    let cfg = cfg();
    let start = Instant::now();
    let mut links = wiring::build(&cfg, 1, 2, start).unwrap();
    let mut shards: Vec<Shard<Echo>> = links
        .shards
        .drain(..)
        .map(|ends| Shard::new(ends, &cfg, || Echo))
        .collect();
    let hosted_shard = shards.remove(1);
    let slot = hosted_shard.health_slot();
    let mut hosted = worker::HostedShard::new(hosted_shard, &cfg, start);
    assert_eq!(hosted.id(), ShardId(1));
    let mut threaded_cfg = cfg.clone();
    threaded_cfg.cpu_ids.clear();
    let threads = worker::spawn_watching(shards, vec![slot], &threaded_cfg, |_| {}).unwrap();
    assert_eq!(
        threads.health_slots().len(),
        2,
        "the hosted shard is watched"
    );
    assert_eq!(threads.health_slots()[1].shard(), ShardId(1));

    let mut port = GatewayPort::new(links.cores.remove(0), &cfg);
    port.join(SessionId(2), PlayerId(2), ZoneId(1)).unwrap();
    // The first run is the first tick (it takes the join).
    hosted.run(start);
    assert_eq!(hosted.next_tick(), start + cfg.tick_interval());
    port.send(
        Instant::now(),
        SessionId(2),
        PlayerId(2),
        ZoneId(1),
        Lane::Critical,
        Transport::Datagram,
        types::ECHO_CRITICAL,
        b"hosted",
    )
    .unwrap();
    // Nothing runs the hosted shard but this thread: no answer yet.
    let mut answered = false;
    port.poll(usize::MAX, |_, e| {
        answered |= matches!(e, ToGateway::Unicast { .. })
    });
    assert!(!answered);
    // A message pass before the next tick answers without ticking.
    hosted.run(start);
    assert_eq!(hosted.next_tick(), start + cfg.tick_interval());
    port.poll(usize::MAX, |shard, e| {
        if let ToGateway::Unicast { player, body, .. } = e {
            assert_eq!(
                (shard, *player, body.payload.as_slice()),
                (ShardId(1), PlayerId(2), &b"hosted"[..])
            );
            answered = true;
        }
    });
    assert!(answered, "the message pass answered");
    hosted.run(start + cfg.tick_interval());
    assert_eq!(hosted.next_tick(), start + 2 * cfg.tick_interval());
    assert!(threads.stop(Duration::from_secs(2)).is_empty());
}

/// With message passes off, a hosted shard answers only at its ticks and
/// does not ask to be woken for messages.
#[test]
fn hosted_shard_without_passes_answers_at_ticks_only() {
    let cfg = ShardConfig {
        message_pass_us: 0,
        ..cfg()
    };
    let start = Instant::now();
    let mut links = wiring::build(&cfg, 1, 1, start).unwrap();
    let shard = Shard::new(links.shards.remove(0), &cfg, || Echo);
    let mut hosted = worker::HostedShard::new(shard, &cfg, start);
    assert!(!hosted.wakes_on_messages());
    let mut port = GatewayPort::new(links.cores.remove(0), &cfg);
    port.join(SessionId(1), PlayerId(1), ZoneId(0)).unwrap();
    hosted.run(start);
    port.send(
        Instant::now(),
        SessionId(1),
        PlayerId(1),
        ZoneId(0),
        Lane::Critical,
        Transport::Datagram,
        types::ECHO_CRITICAL,
        b"tick",
    )
    .unwrap();
    assert!(!hosted.has_input(), "nothing to do before the tick");
    hosted.run(start);
    let mut answered = false;
    port.poll(usize::MAX, |_, e| {
        answered |= matches!(e, ToGateway::Unicast { .. })
    });
    assert!(!answered, "no pass between ticks");
    hosted.run(start + cfg.tick_interval());
    port.poll(usize::MAX, |_, e| {
        answered |= matches!(e, ToGateway::Unicast { .. })
    });
    assert!(answered, "the tick answered");
}

/// Blocks in its third tick until released, if it has a channel pair.
struct MaybeBlocker(Option<Blocker>);

impl Game for MaybeBlocker {
    fn on_message(&mut self, _: &mut Outbox<'_>, _: Incoming<'_>) {}
    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        if let Some(b) = &mut self.0 {
            b.on_tick(out);
        }
    }
}

#[test]
fn a_supervised_stall_is_failed_over_fenced_and_never_recovers() {
    let cfg = ShardConfig {
        stall_failover_ms: 300,
        ..cfg()
    };
    let mut links = wiring::build(&cfg, 1, 2, Instant::now()).unwrap();
    let board = std::sync::Arc::clone(&links.fences);
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let mut blocker = Some(Blocker {
        entered: entered_tx,
        release: release_rx,
        ticks: 0,
    });
    let shards: Vec<Shard<MaybeBlocker>> = links
        .shards
        .drain(..)
        .map(|ends| {
            let mut game = (ends.shard == ShardId(0)).then(|| blocker.take()).flatten();
            Shard::new(ends, &cfg, move || MaybeBlocker(game.take()))
        })
        .collect();
    let (events_tx, events_rx) = mpsc::channel();
    let threads = worker::spawn_supervised(shards, Vec::new(), &cfg, board.clone(), move |e| {
        let _ = events_tx.send((Instant::now(), e));
    })
    .unwrap();
    entered_rx.recv().unwrap();
    let blocked_at = Instant::now();
    let next = || events_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let (_, stalled) = next();
    assert!(matches!(
        stalled,
        StallEvent::Stalled {
            shard: ShardId(0),
            ..
        }
    ));
    let (at, failed) = next();
    assert!(
        matches!(failed, StallEvent::FailedOver { shard: ShardId(0), in_tick: true, stalled_for }
            if stalled_for >= Duration::from_millis(300)),
        "{failed:?}"
    );
    let late = at.saturating_duration_since(blocked_at);
    // The watchdog looks every 25 ms (a quarter of the stall limit, at
    // most a tenth of the failover one); allow scheduling slack.
    assert!(
        late < Duration::from_millis(600),
        "failed over after {late:?}"
    );
    assert!(board.is_fenced(ShardId(0)));
    assert!(
        !board.is_fenced(ShardId(1)),
        "the healthy shard is untouched"
    );
    let slots = threads.health_slots().to_vec();
    assert!(slots[0].read().fenced && !slots[1].read().fenced);
    assert!(!slots[1].read().stalled);
    release_tx.send(()).unwrap();
    let (_, woke) = next();
    assert_eq!(woke, StallEvent::WokeFenced { shard: ShardId(0) });
    assert!(slots[0].read().fenced, "still fenced after it woke");
    assert!(threads.stop(Duration::from_secs(2)).is_empty());
}
