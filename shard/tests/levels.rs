//! A shard's degradation level, as the gateway's control thread sets it on
//! the level board, acted on by the shard runtime and the links: level 1
//! sheds the `bulk` the shard sends and the `bulk` the cores would send it,
//! level 2 defers `normal` (a quarter of its budget a tick, the rest
//! waiting in the bounded inbox), level 3 is visible to the game
//! (`Outbox::level`), and the arena thins its positions. `critical` is
//! untouched throughout.

mod harness;

use lanegate_common::degradation::Level;
use lanegate_common::ids::{PlayerId, ShardId};
use lanegate_common::lanes::Lane;
use lanegate_common::wire::Transport;
use lanegate_shard::config::ShardConfig;
use lanegate_shard::games::Arena;
use lanegate_shard::port::{DropReason, PortError};

use harness::{Got, Harness, Recorder, RecorderFactory, messages, small_cfg, tag};

const TY: [u16; 4] = [0x1001, 0x2001, 0x3001, 0x4001];

fn echoing() -> (Harness<Recorder>, RecorderFactory) {
    let mut f = RecorderFactory::new();
    f.echo = true;
    let g = f.clone();
    let mut h = Harness::new(small_cfg(), 1, 2, move |s| g.make(s));
    // Zone 0 is on shard 0, zone 1 on shard 1.
    h.join(0, 1, 0);
    h.join(0, 2, 1);
    h.step();
    (h, f)
}

fn send(
    h: &mut Harness<Recorder>,
    player: u64,
    zone: u32,
    lane: Lane,
    n: u32,
) -> Result<(), PortError> {
    h.send(
        0,
        player,
        zone,
        lane,
        Transport::Datagram,
        TY[lane.index()],
        &tag(player, lane, n),
    )
}

fn replies(h: &Harness<Recorder>, player: u64) -> Vec<Lane> {
    h.got[0]
        .iter()
        .filter_map(|g| match g {
            Got::Unicast {
                player: p, lane, ..
            } if *p == PlayerId(player) => Some(*lane),
            _ => None,
        })
        .collect()
}

#[test]
fn a_shard_at_level_1_sheds_bulk_both_ways_and_the_other_shard_does_not() {
    let (mut h, _) = echoing();
    h.levels.set(ShardId(1), Level::ShedBulk);
    h.step();
    for lane in Lane::ALL {
        assert!(send(&mut h, 1, 0, lane, 0).is_ok());
    }
    // Towards the loaded shard, bulk is shed at the core before it costs a
    // buffer or a ring slot.
    assert_eq!(
        send(&mut h, 2, 1, Lane::Bulk, 0),
        Err(PortError::Shed { lane: Lane::Bulk })
    );
    assert!(send(&mut h, 2, 1, Lane::Critical, 0).is_ok());
    h.step();
    assert_eq!(replies(&h, 1), Lane::ALL.to_vec(), "shard 0 is not loaded");
    assert_eq!(replies(&h, 2), vec![Lane::Critical]);
    assert_eq!(h.ports[0].drops().get(DropReason::Shed, Lane::Bulk), 1);

    // A bulk message already in the loaded shard's inbox when its level
    // rose: handed to the game, whose bulk reply the shard sheds.
    h.levels.set(ShardId(1), Level::Normal);
    h.step();
    send(&mut h, 2, 1, Lane::Bulk, 1).unwrap();
    h.levels.set(ShardId(1), Level::ShedBulk);
    h.step();
    assert_eq!(replies(&h, 2), vec![Lane::Critical]);
    assert_eq!(h.health(1).shed_out, 1);
    assert_eq!(h.health(1).level, 1);
}

#[test]
fn level_2_defers_normal_into_the_bounded_inbox() {
    let cfg = ShardConfig {
        lane_budget_per_tick: [64, 64, 64, 64],
        inbox_slots_max: [256, 256, 256, 256],
        ring_slots_max: 512,
        ..small_cfg()
    };
    let mut f = RecorderFactory::new();
    f.echo = false;
    let g = f.clone();
    let mut h = Harness::new(cfg, 1, 1, move |s| g.make(s));
    h.join(0, 1, 0);
    h.step();
    h.levels.set(ShardId(0), Level::DeferNormal);
    for n in 0..100 {
        send(&mut h, 1, 0, Lane::Normal, n).unwrap();
        send(&mut h, 1, 0, Lane::Critical, n).unwrap();
    }
    f.clear();
    h.step();
    let handled = messages(&f.calls());
    let count = |lane| handled.iter().filter(|m| m.2 == lane).count();
    assert_eq!(count(Lane::Critical), 64, "critical keeps its budget");
    assert_eq!(count(Lane::Normal), 16, "normal gets a quarter of its 64");
    assert_eq!(
        h.health(0).inbox_depth[Lane::Normal.index()],
        84,
        "the rest waits"
    );
    // Back to normal: the backlog drains at the full budget, in order.
    h.levels.set(ShardId(0), Level::Normal);
    f.clear();
    h.step();
    let next: Vec<Vec<u8>> = messages(&f.calls())
        .into_iter()
        .filter(|m| m.2 == Lane::Normal)
        .map(|m| m.3)
        .collect();
    assert_eq!(next.len(), 64);
    assert_eq!(next[0], tag(1, Lane::Normal, 16));
}

#[test]
fn at_level_3_the_arena_sends_positions_every_other_tick() {
    let mut h = Harness::new(small_cfg(), 1, 1, |_| Arena::default());
    h.join(0, 1, 0);
    h.step();
    let positions = |h: &Harness<Arena>| {
        h.got[0]
            .iter()
            .filter(|g| {
                matches!(
                    g,
                    Got::Unicast {
                        lane: Lane::High,
                        ..
                    }
                )
            })
            .count()
    };
    for _ in 0..10 {
        h.step();
    }
    let before = positions(&h);
    h.levels.set(ShardId(0), Level::ThinHigh);
    for _ in 0..10 {
        h.step();
    }
    let thinned = positions(&h) - before;
    assert_eq!(thinned, 5, "one tick in two");
}
