//! Input no client should send, from an established session, counts toward
//! `ABUSE` (`docs/protocol.md` §8, issue 13 §4): floods of empty, one-byte,
//! control-type or oversize datagrams, stream open/close churn, and a frame
//! announced and trickled past `gateway.frame_stall_ms`.

mod support;

use std::time::Duration;

use lanegate_common::config::Config;
use lanegate_common::frame::put_varint;
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::wire::{CloseCode, types};
use lanegate_gateway::engine::admit::GovernorAdmission;
use quinn_proto::Dir;

use support::{Seen, World, code, ticket};

fn established() -> World<GovernorAdmission> {
    let mut w = World::governed(Config::default());
    w.connect_welcomed(&ticket(7));
    w
}

fn assert_closed_for_abuse(w: &World<GovernorAdmission>) {
    assert_eq!(
        w.clients[0].close_code(),
        code(CloseCode::Abuse),
        "{:?}",
        w.clients[0].closed
    );
    assert_eq!(
        w.seen,
        vec![
            Seen::Join(PlayerId(7), ZoneId(42)),
            Seen::Leave(PlayerId(7), ZoneId(42)),
        ]
    );
    assert_eq!(w.engine.counters().sessions_open, 0);
}

/// The datagrams an attacker floods with, each dropped by the session.
fn bad_datagrams(dgram_max: usize) -> Vec<(&'static str, Vec<u8>)> {
    let mut oversize = vec![0u8; dgram_max + 1];
    oversize[..2].copy_from_slice(&types::ECHO_CRITICAL.to_be_bytes());
    vec![
        ("empty", Vec::new()),
        ("one byte", vec![0x1f]),
        ("reserved control type", vec![0x00, 0x09, 1, 2]),
        ("oversize", oversize),
    ]
}

#[test]
fn a_flood_of_bad_datagrams_closes_with_abuse() {
    let drops_max = Config::default().admission.abuse_drops_max as usize;
    for (what, datagram) in bad_datagrams(1100) {
        let mut w = established();
        // In batches that fit the gateway's datagram receive buffer (QUIC
        // drops the oldest beyond it, before the engine sees them).
        for _ in 0..(drops_max + 1).div_ceil(25) {
            for _ in 0..25 {
                w.clients[0].send_datagram(&datagram);
            }
            while w.pump() {}
        }
        w.settle();
        assert_closed_for_abuse(&w);
        let c = *w.engine.counters();
        assert_eq!(c.admission_closes, 1, "{what}");
        let dropped = c.malformed_datagrams + c.control_datagrams + c.oversize_datagrams;
        assert_eq!(
            dropped,
            drops_max as u64 + 1,
            "closed at the first over the maximum: {what}"
        );
        assert_eq!(c.messages_to_shard, 0, "{what}");
    }
}

#[test]
fn a_few_bad_datagrams_are_only_counted() {
    let drops_max = Config::default().admission.abuse_drops_max as usize;
    let mut w = established();
    for (_, datagram) in bad_datagrams(1100) {
        for _ in 0..drops_max / 4 / 25 {
            for _ in 0..25 {
                w.clients[0].send_datagram(&datagram);
            }
            while w.pump() {}
        }
    }
    w.settle();
    let c = *w.engine.counters();
    assert_eq!(
        c.malformed_datagrams + c.control_datagrams + c.oversize_datagrams,
        drops_max as u64
    );
    assert_eq!(w.clients[0].closed, None);
    assert_eq!(w.engine.counters().admission_closes, 0);
    assert_eq!(w.engine.counters().sessions_open, 1);
}

/// Opens and finishes empty uni streams as fast as the gateway's stream
/// credit lets it, `count` in all.
fn churn_streams(w: &mut World<GovernorAdmission>, count: usize) {
    let mut opened = 0;
    for _ in 0..10_000 {
        if opened == count || w.clients[0].closed.is_some() {
            break;
        }
        let c = &mut w.clients[0];
        while opened < count
            && let Some(id) = c.conn.streams().open(Dir::Uni)
        {
            c.conn.send_stream(id).finish().expect("a fresh stream");
            opened += 1;
        }
        while w.pump() {}
        w.run_for(Duration::from_millis(1));
    }
}

#[test]
fn stream_churn_closes_with_abuse() {
    let drops_max = Config::default().admission.abuse_drops_max as usize;
    let mut w = established();
    churn_streams(&mut w, drops_max + 10);
    w.settle();
    assert_closed_for_abuse(&w);
    let c = *w.engine.counters();
    assert_eq!(c.admission_closes, 1);
    assert_eq!(c.uni_streams_ended, drops_max as u64 + 1);
}

#[test]
fn a_stream_per_second_for_a_minute_is_fine() {
    let mut w = established();
    for _ in 0..60 {
        churn_streams(&mut w, 1);
        w.run_for(Duration::from_secs(1));
    }
    assert_eq!(w.clients[0].closed, None);
    assert_eq!(w.engine.counters().uni_streams_ended, 60);
}

/// Opens a uni stream and writes the start of a frame announcing `len`
/// bytes; returns the stream.
fn announce(w: &mut World<GovernorAdmission>, len: u64) -> quinn_proto::StreamId {
    let c = &mut w.clients[0];
    let uni = c.conn.streams().open(Dir::Uni).expect("stream credit");
    let mut head = Vec::new();
    put_varint(len, &mut head);
    head.extend_from_slice(&types::ECHO_NORMAL.to_be_bytes());
    c.conn.send_stream(uni).write(&head).expect("room");
    uni
}

#[test]
fn a_trickled_frame_closes_with_abuse_after_the_stall_limit() {
    let config = Config::default();
    let stall = Duration::from_millis(config.gateway.frame_stall_ms);
    let mut w = established();
    let uni = announce(&mut w, config.gateway.stream_message_bytes_max as u64);
    let start = w.now;
    // One byte a second: never complete, never idle.
    while w.clients[0].closed.is_none() && w.now < start + stall * 2 {
        w.clients[0].conn.send_stream(uni).write(&[7]).unwrap();
        w.run_for(Duration::from_secs(1));
    }
    assert_closed_for_abuse(&w);
    let c = *w.engine.counters();
    assert_eq!(c.frame_stalls, 1);
    let took = w.now - start;
    assert!(
        took >= stall && took <= stall + Duration::from_secs(1),
        "{took:?}"
    );
}

#[test]
fn slow_frames_that_complete_in_time_are_fine() {
    let config = Config::default();
    let stall = Duration::from_millis(config.gateway.frame_stall_ms);
    let mut w = established();
    let uni = announce(&mut w, 10);
    // Three frames of 10 bytes, each taking most of the limit, back to back:
    // the stream is inside a frame for three limits in all.
    for frame in 0..3 {
        let steps = 8;
        for i in 0..steps {
            let last = i == steps - 1;
            let mut bytes = vec![frame; 1];
            if last {
                // The frame's last byte, and the start of the next one.
                put_varint(10, &mut bytes);
                bytes.extend_from_slice(&types::ECHO_NORMAL.to_be_bytes());
            }
            w.clients[0].conn.send_stream(uni).write(&bytes).unwrap();
            w.run_for(stall / 10);
        }
    }
    assert_eq!(w.clients[0].closed, None);
    assert_eq!(w.engine.counters().frame_stalls, 0);
    assert_eq!(w.shard_got(types::ECHO_NORMAL), 3);
}
