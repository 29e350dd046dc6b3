//! What the degradation ladder's levels do to traffic, through the whole
//! path of `sim`: shedding `bulk` (level 1) and `normal` (level 2) both
//! ways while `critical` flows, and refusing new sessions (level 4) while
//! established ones play on. Each shed message is counted once, by the
//! links. The ladder's own rises and falls are tested on a virtual clock
//! in `lanegate-control` and `runtime/overload.rs`.

// `allow-unwrap-in-tests` covers `#[test]` functions only; in the helpers a
// failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

mod sim;
mod support;

use std::time::Duration;

use lanegate_common::config::Config;
use lanegate_common::degradation::Level;
use lanegate_common::ids::ZoneId;
use lanegate_common::lanes::Lane;
use lanegate_common::wire::{CloseCode, Transport, types};
use lanegate_shard::games::Echo;
use lanegate_shard::port::{DropReason, Shedding};

use sim::net::Conditions;
use sim::{Sim, identity};
use support::{code, ticket_in};

fn sim() -> Sim<Echo> {
    let mut sim = Sim::new(
        &Config::default(),
        &identity(),
        1,
        |_| Echo,
        3,
        Conditions::clean(),
    );
    sim.connect(&ticket_in(1, ZoneId(1)));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.clients[0].welcomed());
    sim
}

/// Sends one echo datagram per lane; returns the lanes that answered.
fn echo_every_lane(sim: &mut Sim<Echo>) -> Vec<Lane> {
    let before = sim.clients[0].messages().len();
    for ty in types::ECHO {
        let mut d = ty.to_be_bytes().to_vec();
        d.push(1);
        sim.clients[0].send_datagram(&d);
    }
    sim.run_for(Duration::from_millis(200));
    sim.clients[0].messages()[before..]
        .iter()
        .filter(|m| m.2 == Transport::Datagram)
        .map(|m| Lane::ALL[types::ECHO.iter().position(|&t| t == m.0).unwrap()])
        .collect()
}

#[test]
fn levels_shed_the_lanes_they_name_and_never_critical() {
    let mut sim = sim();
    assert_eq!(echo_every_lane(&mut sim), Lane::ALL.to_vec());

    sim.links.set_shedding(Shedding {
        from: Some(Lane::Bulk),
        ..Shedding::default()
    });
    assert_eq!(
        echo_every_lane(&mut sim),
        vec![Lane::Critical, Lane::High, Lane::Normal]
    );
    assert_eq!(sim.links.drops().get(DropReason::Shed, Lane::Bulk), 1);

    sim.links.set_shedding(Shedding {
        from: Some(Lane::Normal),
        ..Shedding::default()
    });
    assert_eq!(echo_every_lane(&mut sim), vec![Lane::Critical, Lane::High]);
    assert_eq!(sim.links.drops().get(DropReason::Shed, Lane::Normal), 1);
    assert_eq!(sim.links.drops().get(DropReason::Shed, Lane::Critical), 0);

    // Even asked to shed from critical, the links keep it.
    sim.links.set_shedding(Shedding {
        from: Some(Lane::Critical),
        ..Shedding::default()
    });
    assert_eq!(echo_every_lane(&mut sim), vec![Lane::Critical]);

    sim.links.set_shedding(Shedding::default());
    assert_eq!(echo_every_lane(&mut sim), Lane::ALL.to_vec());
}

#[test]
fn replies_of_a_shed_lane_already_on_their_way_are_shed_and_counted() {
    let mut sim = sim();
    // The gateway reads the shard's ring only every 50 ms: replies wait
    // there while the level rises.
    sim.set_link_poll_interval(Duration::from_millis(50));
    for ty in [types::ECHO_CRITICAL, types::ECHO_BULK] {
        let mut d = ty.to_be_bytes().to_vec();
        d.push(2);
        sim.clients[0].send_datagram(&d);
    }
    sim.run_for(Duration::from_millis(5));
    sim.links.set_shedding(Shedding {
        from: Some(Lane::Bulk),
        ..Shedding::default()
    });
    sim.run_for(Duration::from_millis(200));
    let got: Vec<u16> = sim.clients[0].messages().iter().map(|m| m.0).collect();
    assert_eq!(got, vec![types::ECHO_CRITICAL]);
    assert_eq!(sim.links.drops().shed_out[Lane::Bulk.index()], 1);
}

#[test]
fn protect_refuses_new_sessions_and_keeps_the_established() {
    let mut sim = sim();
    sim.links.set_shedding(Shedding {
        from: Some(Lane::Normal),
        refuse_sessions: true,
        ..Shedding::default()
    });
    sim.connect(&ticket_in(2, ZoneId(1)));
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.clients[1].close_code(), code(CloseCode::ServerFull));
    assert!(!sim.clients[1].welcomed());
    assert_eq!(sim.clients[0].closed, None);
    assert!(echo_every_lane(&mut sim).contains(&Lane::Critical));
}

#[test]
fn level_two_defers_normal_and_releases_it_in_order_when_the_level_falls() {
    let mut sim = sim();
    sim.links
        .set_shedding(Shedding::for_core(Level::DeferNormal));
    // bulk is shed, normal waits at the core, the rest plays on.
    assert_eq!(echo_every_lane(&mut sim), vec![Lane::Critical, Lane::High]);
    assert_eq!(sim.links.drops().deferred, 1);
    assert_eq!(sim.links.deferred_waiting(), 1);
    assert_eq!(sim.links.drops().get(DropReason::Shed, Lane::Normal), 0);
    // The level falls: the deferred echo goes to the shard and comes back.
    sim.links.set_shedding(Shedding::for_core(Level::Normal));
    let before = sim.clients[0].messages().len();
    sim.run_for(Duration::from_millis(200));
    let released: Vec<u16> = sim.clients[0].messages()[before..]
        .iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(released, vec![types::ECHO_NORMAL]);
    assert_eq!(sim.links.deferred_waiting(), 0);
}

#[test]
fn a_deferred_message_that_waited_too_long_is_dropped_at_release() {
    let mut sim = sim();
    sim.links
        .set_shedding(Shedding::for_core(Level::DeferNormal));
    echo_every_lane(&mut sim);
    assert_eq!(sim.links.deferred_waiting(), 1);
    // Longer than overload.defer_normal_max_ms (5 s) at level 2: when the
    // level falls, it is dropped, not delivered late.
    sim.run_for(Duration::from_secs(6));
    sim.links.set_shedding(Shedding::for_core(Level::Normal));
    assert_eq!(echo_every_lane(&mut sim), Lane::ALL.to_vec());
    assert_eq!(sim.links.drops().deferred_expired, 1);
    assert_eq!(sim.links.deferred_waiting(), 0);
}
