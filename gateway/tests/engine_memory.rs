//! What a hostile peer can make one connection hold (issue 13 §4, "peer
//! memory bounds"; the budget is derived in `docs/memory.md`).
//!
//! Each test establishes one session, then measures the heap the gateway's
//! side (engine, its QUIC endpoint and connection, the session) gains
//! while the client attacks: `allocation_counter` counts allocations per
//! thread, and [`Meter::server`] charges to the gateway only the calls into
//! the engine, so the client's own buffers are not counted. The figure is
//! the live bytes the engine's calls allocated and did not free, at its
//! highest during the attack.

// The unwrap allowance of clippy.toml covers test functions only, not
// the harness; here a failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use lanegate_common::config::Config;
use lanegate_common::frame::put_varint;
use lanegate_common::wire::types;
use lanegate_gateway::engine::admit::GovernorAdmission;
use quinn_proto::Dir;

use support::{World, ticket};

/// The per-connection budget of `docs/memory.md` for the default
/// configuration: the session's five frame readers (82 KB), the control
/// backlog and send window (64 KiB each), the connection receive window
/// (64 KiB) with quinn's over-allocation before it defragments, datagram
/// buffers, and quinn's own connection state.
const BUDGET_BYTES: i64 = 640 * 1024;

/// Live bytes charged to the gateway, and the most seen.
#[derive(Default)]
struct Meter {
    live: i64,
    peak: i64,
}

impl Meter {
    fn server<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let mut out = None;
        let info = allocation_counter::measure(|| out = Some(f()));
        self.live += info.bytes_current;
        self.peak = self.peak.max(self.live);
        out.unwrap()
    }
}

/// One turn of the world, as `World::pump`, with every engine call metered.
fn pump(w: &mut World<GovernorAdmission>, m: &mut Meter) -> bool {
    let mut progress = false;
    let now = w.now;
    let mut buf = Vec::with_capacity(2048);
    for c in &mut w.clients {
        c.poll_events();
        while let Some(t) = c.conn.poll_transmit(now, 1, &mut buf) {
            progress = true;
            let (engine, links) = (&mut w.engine, &mut w.links);
            m.server(|| engine.handle_datagram(now, c.addr, None, t.ecn, &buf[..t.size], links));
            buf.clear();
        }
    }
    let mut out = Vec::new();
    let mut tx = Vec::with_capacity(2048);
    loop {
        let engine = &mut w.engine;
        let Some(t) = m.server(|| engine.poll_transmit(now, 1, &mut tx)) else {
            break;
        };
        progress = true;
        out.push((t.destination, t.ecn, tx[..t.size].to_vec()));
    }
    for (dest, ecn, bytes) in out {
        if let Some(c) = w.clients.iter_mut().find(|c| c.addr == dest) {
            c.receive(now, ecn, &bytes);
        }
    }
    for c in &mut w.clients {
        c.poll_endpoint();
        c.poll_events();
    }
    progress |= w.shard.drain(None);
    let (engine, links) = (&mut w.engine, &mut w.links);
    progress |= m.server(|| engine.poll_shards(now, links, usize::MAX)) > 0;
    progress
}

/// Runs the world for `d` of virtual time, metered.
fn run_for(w: &mut World<GovernorAdmission>, m: &mut Meter, d: Duration) {
    let end = w.now + d;
    for _ in 0..100_000 {
        while pump(w, m) {}
        let engine = &mut w.engine;
        let mut next = m.server(|| engine.next_timeout());
        for c in &mut w.clients {
            if let Some(t) = c.conn.poll_timeout() {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        match next {
            Some(t) if t <= end => {
                w.now = w.now.max(t);
                let now = w.now;
                for c in &mut w.clients {
                    if c.conn.poll_timeout().is_some_and(|t| t <= now) {
                        c.conn.handle_timeout(now);
                    }
                }
                let (engine, links) = (&mut w.engine, &mut w.links);
                m.server(|| engine.handle_timeouts(now, links));
            }
            _ => {
                w.now = end;
                while pump(w, m) {}
                return;
            }
        }
    }
    panic!("the world did not settle");
}

fn established() -> World<GovernorAdmission> {
    let mut w = World::governed(Config::default());
    w.connect_welcomed(&ticket(7));
    // Let the first turns' one-off allocations (arenas, tables) happen
    // before measuring.
    w.run_for(Duration::from_secs(1));
    w
}

fn assert_within_budget(what: &str, m: &Meter) {
    eprintln!("{what}: peak {} bytes", m.peak);
    assert!(
        m.peak <= BUDGET_BYTES,
        "{what}: the gateway gained {} bytes, over the {BUDGET_BYTES}-byte budget",
        m.peak
    );
}

#[test]
fn an_established_connection_costs_a_bounded_amount() {
    let mut w = established();
    let mut m = Meter::default();
    w.connect(&ticket(8));
    run_for(&mut w, &mut m, Duration::from_secs(1));
    assert!(w.clients[1].welcomed());
    eprintln!("a second established connection: {} bytes", m.live);
    assert!(m.live <= BUDGET_BYTES / 4, "{} bytes", m.live);
}

#[test]
fn every_stream_with_a_largest_frame_half_sent_stays_within_budget() {
    let config = Config::default();
    let max = config.gateway.stream_message_bytes_max;
    let mut w = established();
    let mut m = Meter::default();
    let c = &mut w.clients[0];
    let mut streams = Vec::new();
    while let Some(id) = c.conn.streams().open(Dir::Uni) {
        streams.push(id);
    }
    assert_eq!(streams.len(), config.gateway.uni_streams_max as usize);
    // On every stream (the control stream too) a largest frame, announced
    // and sent all but its last byte, then as much more as QUIC will take.
    let mut ids = streams.clone();
    ids.push(c.control.unwrap());
    for &id in &ids {
        let mut frame = Vec::new();
        put_varint(max as u64, &mut frame);
        frame.extend_from_slice(&types::ECHO_NORMAL.to_be_bytes());
        frame.resize(frame.len() + max - 3, 7);
        // QUIC's connection window stops the writes part way: that is the
        // bound at work.
        let _ = c.conn.send_stream(id).write(&frame);
    }
    run_for(&mut w, &mut m, Duration::from_secs(1));
    for &id in &ids {
        let _ = w.clients[0].conn.send_stream(id).write(&vec![7u8; 4 * max]);
    }
    run_for(&mut w, &mut m, Duration::from_secs(2));
    // The client was held back by the connection window, not by the
    // per-stream ones alone (`gateway.connection_receive_window_bytes`).
    assert!(w.clients[0].conn.stats().frame_tx.data_blocked > 0);
    assert_within_budget("every stream full", &m);
}

#[test]
fn a_datagram_flood_stays_within_budget() {
    let mut w = established();
    let mut m = Meter::default();
    let mut oversize = vec![0u8; 1101];
    oversize[..2].copy_from_slice(&types::ECHO_CRITICAL.to_be_bytes());
    for datagram in [vec![], vec![0x1f], vec![0x00, 0x09, 1], oversize] {
        // Under the abuse limit, so the connection stays open throughout.
        for _ in 0..4 {
            for _ in 0..25 {
                w.clients[0].send_datagram(&datagram);
            }
            while pump(&mut w, &mut m) {}
        }
    }
    run_for(&mut w, &mut m, Duration::from_millis(200));
    assert_eq!(w.clients[0].closed, None);
    assert_within_budget("datagram flood", &m);
}

#[test]
fn stream_churn_stays_within_budget() {
    let mut w = established();
    let mut m = Meter::default();
    for _ in 0..100 {
        let c = &mut w.clients[0];
        while let Some(id) = c.conn.streams().open(Dir::Uni) {
            c.conn.send_stream(id).finish().unwrap();
        }
        run_for(&mut w, &mut m, Duration::from_millis(1));
    }
    assert!(w.engine.counters().uni_streams_ended >= 100);
    assert_within_budget("stream churn", &m);
}

#[test]
fn a_trickled_frame_stays_within_budget_and_is_returned_on_close() {
    let mut w = established();
    let mut m = Meter::default();
    let c = &mut w.clients[0];
    let uni = c.conn.streams().open(Dir::Uni).unwrap();
    let mut head = Vec::new();
    put_varint(16_384, &mut head);
    c.conn.send_stream(uni).write(&head).unwrap();
    for _ in 0..10 {
        if w.clients[0].closed.is_some() {
            break;
        }
        w.clients[0].conn.send_stream(uni).write(&[7]).unwrap();
        run_for(&mut w, &mut m, Duration::from_secs(1));
    }
    assert!(w.clients[0].closed.is_some(), "closed for the stall");
    assert_within_budget("trickled frame", &m);
    // After the close the connection's QUIC state is gone; the session's
    // buffers stay with the slot for its next connection (reused, not
    // grown).
    run_for(&mut w, &mut m, Duration::from_secs(5));
    assert_eq!(w.engine.connections_open(), 0);
    eprintln!("after close: {} bytes kept", m.live);
    assert!(
        m.live <= 128 * 1024,
        "{} bytes kept after the close",
        m.live
    );
}
