//! Malformed client input through the real engine (`docs/protocol.md` §2,
//! §3): bad datagrams are counted and dropped, bad stream framing closes
//! with `PROTOCOL_VIOLATION`, and arbitrary bytes never panic it.

mod support;

use lanegate_common::config::Config;
use lanegate_common::frame::put_varint;
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::wire::{CloseCode, Transport, types};
use lanegate_gateway::engine::AdmitAll;
use proptest::prelude::*;
use quinn_proto::Dir;

use support::{Seen, World, code, ticket};

fn established() -> World<AdmitAll> {
    let mut w = World::admit_all(Config::default());
    w.connect_welcomed(&ticket(7));
    w
}

fn joined_then_left() -> Vec<Seen> {
    vec![
        Seen::Join(PlayerId(7), ZoneId(42)),
        Seen::Leave(PlayerId(7), ZoneId(42)),
    ]
}

#[test]
fn malformed_datagrams_after_welcome_are_counted_and_dropped() {
    let mut w = established();
    let dgram_max = usize::from(w.engine.params().welcome.datagram_message_bytes_max);
    w.clients[0].send_datagram(&[]);
    w.clients[0].send_datagram(&[0x1f]);
    // Control types: reserved, and the real ones, which never travel as
    // datagrams.
    w.clients[0].send_datagram(&[0x00, 0x09, 1, 2]);
    w.clients[0].send_datagram(&[0x00, 0xff]);
    w.clients[0].send_datagram(&types::HELLO.to_be_bytes());
    // One byte over the maximum, with a valid game type.
    let mut oversize = vec![0u8; dgram_max + 1];
    oversize[..2].copy_from_slice(&types::ECHO_CRITICAL.to_be_bytes());
    w.clients[0].send_datagram(&oversize);
    w.settle();
    let c = *w.engine.counters();
    assert_eq!(c.datagrams_in, 6);
    assert_eq!(c.malformed_datagrams, 2);
    assert_eq!(c.control_datagrams, 3);
    assert_eq!(c.oversize_datagrams, 1);
    assert_eq!(c.messages_to_shard, 0);
    assert_eq!(c.protocol_violations, 0);
    assert_eq!(w.seen, vec![Seen::Join(PlayerId(7), ZoneId(42))]);
    assert_eq!(w.clients[0].closed, None);

    // The connection still works, at exactly the maximum too.
    let mut largest = vec![7u8; dgram_max];
    largest[..2].copy_from_slice(&types::ECHO_CRITICAL.to_be_bytes());
    w.clients[0].send_datagram(&largest);
    w.clients[0].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    assert_eq!(
        w.clients[0].messages(),
        vec![
            (
                types::ECHO_CRITICAL,
                largest[2..].to_vec(),
                Transport::Datagram
            ),
            (0x1fff, vec![1], Transport::Datagram),
        ]
    );
    assert_eq!(w.engine.counters().sessions_open, 1);
}

/// Writes `bytes` on the control stream of an established session, and
/// checks the engine closed with `PROTOCOL_VIOLATION` for bad framing.
fn assert_control_bytes_violate(bytes: &[u8], what: &str) {
    assert_control_bytes_violate_after(bytes, 0, what);
}

/// As [`assert_control_bytes_violate`], when `good` whole game frames come
/// before the bad one (they reach the shard).
fn assert_control_bytes_violate_after(bytes: &[u8], good: u64, what: &str) {
    let mut w = established();
    w.clients[0].write_control(bytes);
    w.settle();
    assert_eq!(
        w.clients[0].close_code(),
        code(CloseCode::ProtocolViolation),
        "{what}: {:?}",
        w.clients[0].closed
    );
    let c = w.engine.counters();
    assert_eq!(c.protocol_violations, 1, "{what}");
    assert_eq!(c.malformed_streams, 1, "{what}");
    assert_eq!(c.messages_to_shard, good, "{what}");
    assert_eq!(w.seen.first(), Some(&Seen::Join(PlayerId(7), ZoneId(42))));
    assert_eq!(
        w.seen.last(),
        Some(&Seen::Leave(PlayerId(7), ZoneId(42))),
        "{what}"
    );
}

#[test]
fn frame_lengths_below_two_violate() {
    assert_control_bytes_violate(&[0x00], "length 0");
    assert_control_bytes_violate(&[0x01, 0x1f], "length 1");
    // A good frame first does not save a bad one after it.
    assert_control_bytes_violate_after(&[0x03, 0x1f, 0xff, 1, 0x00], 1, "length 0 after a frame");
}

/// A largest stream message behind a non-minimal, 8-byte length prefix
/// (QUIC varints may be sent so) is delivered, and the session goes on.
/// The first frame reader's buffer had room only for the minimal prefix:
/// it filled up without ever holding the whole frame and the core spun
/// forever on one peer's bytes (found by the `frame_reader` fuzz target).
#[test]
fn a_largest_message_behind_an_overlong_length_prefix_is_delivered() {
    let max = Config::default().gateway.stream_message_bytes_max;
    let mut w = established();
    let mut bytes = vec![0xc0, 0, 0, 0];
    bytes.extend_from_slice(&u32::try_from(max).unwrap().to_be_bytes());
    bytes.extend_from_slice(&types::ECHO_NORMAL.to_be_bytes());
    bytes.resize(8 + max, 0x5a);
    // And a small message after it, minimally framed.
    bytes.extend_from_slice(&[0x03]);
    bytes.extend_from_slice(&types::ECHO_NORMAL.to_be_bytes());
    bytes.push(1);
    w.clients[0].write_control(&bytes);
    w.settle();
    assert_eq!(w.clients[0].close_code(), None, "{:?}", w.clients[0].closed);
    assert!(
        w.seen.contains(&Seen::Message(
            types::ECHO_NORMAL,
            Transport::Stream,
            max - 2
        )),
        "{:?}",
        w.seen
    );
    assert_eq!(w.shard_got(types::ECHO_NORMAL), 2);
    assert_eq!(w.engine.counters().malformed_streams, 0);
}

#[test]
fn frame_length_over_the_stream_maximum_violates() {
    let max = Config::default().gateway.stream_message_bytes_max as u64;
    let mut bytes = Vec::new();
    put_varint(max + 1, &mut bytes);
    bytes.extend_from_slice(&types::ECHO_NORMAL.to_be_bytes());
    // Refused on the length alone, before the body arrives.
    assert_control_bytes_violate(&bytes, "length max + 1");
    let mut huge = Vec::new();
    put_varint((1 << 62) - 1, &mut huge);
    assert_control_bytes_violate(&huge, "length 2^62 - 1");
}

#[test]
fn frame_cut_short_by_fin_violates() {
    let mut w = established();
    let c = &mut w.clients[0];
    let uni = c.conn.streams().open(Dir::Uni).unwrap();
    // Declares 10 bytes, carries 3, then finishes.
    c.conn
        .send_stream(uni)
        .write(&[0x0a, 0x1f, 0xff, 1])
        .unwrap();
    c.conn.send_stream(uni).finish().unwrap();
    w.settle();
    assert_eq!(
        w.clients[0].close_code(),
        code(CloseCode::ProtocolViolation)
    );
    let c = w.engine.counters();
    assert_eq!(c.protocol_violations, 1);
    assert_eq!(c.malformed_streams, 1);
    assert_eq!(c.messages_to_shard, 0);
    assert_eq!(w.seen, joined_then_left());
}

#[test]
fn control_stream_cut_short_by_fin_violates() {
    let mut w = established();
    let c = &mut w.clients[0];
    let control = c.control.unwrap();
    c.conn
        .send_stream(control)
        .write(&[0x0a, 0x1f, 0xff, 1])
        .unwrap();
    c.conn.send_stream(control).finish().unwrap();
    w.settle();
    assert_eq!(
        w.clients[0].close_code(),
        code(CloseCode::ProtocolViolation),
        "{:?}",
        w.clients[0].closed
    );
    assert_eq!(w.engine.counters().malformed_streams, 1);
    assert_eq!(w.seen, joined_then_left());
}

#[test]
fn a_whole_frame_then_fin_on_a_uni_stream_is_fine() {
    let mut w = established();
    let c = &mut w.clients[0];
    let uni = c.conn.streams().open(Dir::Uni).unwrap();
    c.conn
        .send_stream(uni)
        .write(&[0x03, 0x1f, 0xff, 1])
        .unwrap();
    c.conn.send_stream(uni).finish().unwrap();
    w.settle();
    assert_eq!(w.clients[0].closed, None);
    assert_eq!(w.engine.counters().protocol_violations, 0);
    assert_eq!(
        w.clients[0].messages(),
        vec![(0x1fff, vec![1], Transport::Stream)]
    );
}

/// What one fuzz case does with its bytes.
#[derive(Clone, Debug)]
enum Input {
    Datagram(Vec<u8>),
    Control(Vec<u8>),
}

fn input() -> impl Strategy<Value = Input> {
    let bytes = prop::collection::vec(any::<u8>(), 0..1_300);
    // Mostly short inputs near the framing edge cases.
    let short = prop::collection::vec(any::<u8>(), 0..8);
    prop_oneof![
        bytes.clone().prop_map(Input::Datagram),
        short.clone().prop_map(Input::Datagram),
        bytes.prop_map(Input::Control),
        short.prop_map(Input::Control),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Arbitrary datagrams and control-stream bytes, before `Hello` (when
    /// `hello` is false) or after `Welcome`, never panic the engine; it ends
    /// with the connection open, or closed with a protocol code.
    #[test]
    fn arbitrary_bytes_never_panic_the_engine(
        hello in any::<bool>(),
        inputs in prop::collection::vec(input(), 1..6),
    ) {
        let mut w = World::admit_all(Config::default());
        w.connect(&ticket(7));
        w.clients[0].auto_hello = hello;
        w.settle();
        prop_assert_eq!(w.clients[0].welcomed(), hello);
        for input in &inputs {
            let c = &mut w.clients[0];
            if c.closed.is_some() {
                break;
            }
            match input {
                Input::Datagram(d) => {
                    let max = c.conn.datagrams().max_size().unwrap();
                    c.send_datagram(&d[..d.len().min(max)]);
                }
                Input::Control(bytes) => c.write_control(bytes),
            }
            w.settle();
        }
        let allowed = [
            CloseCode::NoError,
            CloseCode::ProtocolViolation,
            CloseCode::UnsupportedVersion,
            CloseCode::BadTicket,
            CloseCode::TicketExpired,
        ]
        .map(|c| u64::from(c.code()));
        match &w.clients[0].closed {
            None => prop_assert!(w.engine.counters().connections_open == 1),
            Some(_) => {
                let got = w.clients[0].close_code();
                prop_assert!(
                    got.is_some_and(|c| allowed.contains(&c)),
                    "closed with {:?}", w.clients[0].closed
                );
            }
        }
        // The engine still serves a new client afterwards.
        let next = w.connect(&ticket(8));
        w.settle();
        prop_assert!(w.clients[next].welcomed());
    }
}
