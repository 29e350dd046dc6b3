//! The twelve points an independent client found unspecified (issue 12,
//! §4), each tested against what `docs/protocol.md` now says, in memory on
//! a virtual clock (`support`; the demo game's pushes through the whole
//! path of `sim`). Each test names its point.

// `allow-unwrap-in-tests` covers `#[test]` functions only; in the helpers a
// failed unwrap is a failed test, as intended.
#![allow(clippy::unwrap_used)]

mod sim;
mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use lanegate_client::session::Event as ClientEvent;
use lanegate_common::config::{Config, ZoneSet};
use lanegate_common::frame::put_frame;
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::lanes::Lane;
use lanegate_common::link::{Body, InlinePayload, Payload, ToGateway};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_common::wire::{CloseCode, Hello, Message, Transport, types};
use lanegate_gateway::engine::AdmitDecision;
use lanegate_gateway::engine::admit::GovernorAdmission;
use lanegate_gateway::engine::peer_params::{self, DATAGRAM_FRAME_SIZE_MIN};
use lanegate_shard::games::Demo;
use quinn_proto::{ConnectionError, TransportErrorCode};
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};

use sim::net::Conditions;
use sim::{Sim, identity};
use support::{
    ConnectOpts, ScriptedAdmission, Seen, UNIX_NOW, World, code, ticket, ticket_in, ticket_with,
};

/// The base64url alphabet (RFC 4648 §5), in value order.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn world() -> World<ScriptedAdmission> {
    World::scripted(Config::default())
}

/// A `Hello` frame as a client writes it, with `ticket` exactly as given.
fn hello_frame(version: u16, ticket: &[u8]) -> Vec<u8> {
    let mut message = Vec::new();
    Message::Hello(Hello { version, ticket })
        .encode(&mut message)
        .unwrap();
    let mut frame = Vec::new();
    put_frame(&message, &mut frame);
    frame
}

/// A `Hello` frame whose `ticket_len` says `len`, followed by `body`.
fn raw_hello_frame(version: u16, len: u16, body: &[u8]) -> Vec<u8> {
    let mut message = vec![0x00, 0x01];
    message.extend_from_slice(&version.to_be_bytes());
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(body);
    let mut frame = Vec::new();
    put_frame(&message, &mut frame);
    frame
}

/// Connects a client that writes `frame` instead of the SDK's `Hello`.
fn connect_sending(w: &mut World<ScriptedAdmission>, frame: &[u8]) -> usize {
    let i = w.connect(&ticket(7));
    w.clients[i].hello = frame.to_vec();
    w.settle();
    i
}

/// How client `i`'s connection ended, for assertion messages.
fn closed_with(w: &World<impl lanegate_gateway::engine::Admission>, i: usize) -> String {
    format!("{:?}", w.clients[i].closed)
}

// 1. A `max_datagram_frame_size` below 1200 is refused like none at all.
#[test]
fn p01_datagram_frame_size_below_1200_is_datagrams_required() {
    let mut w = world();
    for opts in [
        ConnectOpts::no_datagrams(),
        ConnectOpts::datagram_frame_size(500),
        ConnectOpts::datagram_frame_size(1199),
        ConnectOpts::datagram_frame_size(1200),
        ConnectOpts::default(),
    ] {
        w.connect_with(&ticket(7), opts);
    }
    w.settle();
    for i in 0..3 {
        let c = &w.clients[i];
        assert_eq!(c.close_code(), code(CloseCode::DatagramsRequired), "{i}");
        assert!(!c.welcomed() && c.rejected_code().is_none(), "{i}");
    }
    assert!(w.clients[3].welcomed(), "{}", closed_with(&w, 3));
    assert!(w.clients[4].welcomed());
    assert_eq!(w.engine.counters().datagrams_required, 3);
    assert_eq!(DATAGRAM_FRAME_SIZE_MIN, 1200);
}

// 2. The demo game pushes positions (0x2000) unasked, about once a tick.
#[test]
fn p02_demo_game_pushes_positions_to_every_session_each_tick() {
    let config = Config::default();
    let mut sim = Sim::new(
        &config,
        &identity(),
        1,
        |_| Demo::default(),
        3,
        Conditions::clean(),
    );
    sim.connect(&ticket_in(1, ZoneId(1)));
    sim.run_for(Duration::from_secs(1));
    assert!(sim.clients[0].welcomed());
    let positions = |sim: &Sim<Demo>| {
        sim.clients[0]
            .messages()
            .iter()
            .filter(|(ty, _, t)| *ty == 0x2000 && *t == Transport::Datagram)
            .count()
    };
    let before = positions(&sim);
    sim.run_for(Duration::from_secs(1));
    let per_second = positions(&sim) - before;
    // The client sent nothing; one a tick at 30 Hz.
    assert!(
        (28..=32).contains(&per_second),
        "{per_second} positions in 1 s"
    );
}

// 2. A game type the client does not know is delivered, not an error.
#[test]
fn p02_unknown_game_types_reach_the_client_and_close_nothing() {
    let mut w = world();
    w.connect_welcomed(&ticket(7));
    let session = w.clients[0].session.info().unwrap().session;
    for transport in [Transport::Datagram, Transport::Stream] {
        w.push_from_shard(ToGateway::Unicast {
            session,
            player: PlayerId(7),
            body: Body {
                ty: 0x7abc,
                lane: Lane::Bulk,
                transport,
                payload: Payload::Inline(InlinePayload::new(&[1, 2, 3]).unwrap()),
            },
        });
    }
    w.settle();
    let got = w.clients[0].messages();
    assert!(got.contains(&(0x7abc, vec![1, 2, 3], Transport::Datagram)));
    assert!(got.contains(&(0x7abc, vec![1, 2, 3], Transport::Stream)));
    assert_eq!(w.clients[0].closed, None);
}

// 3. A `Reject` precedes exactly the refusals of a readable `Hello`.
#[test]
fn p03_reject_precedes_exactly_version_ticket_and_zone_refusals() {
    let mut w = world();
    let expired = ticket_with(&KeySet::dev(), 7, UNIX_NOW - 3600);
    let with_reject = [
        (
            hello_frame(2, ticket(7).as_bytes()),
            CloseCode::UnsupportedVersion,
        ),
        (hello_frame(1, b"nope"), CloseCode::BadTicket),
        (hello_frame(1, expired.as_bytes()), CloseCode::TicketExpired),
        (
            hello_frame(1, ticket_in(7, ZoneId(5000)).as_bytes()),
            CloseCode::UnknownZone,
        ),
    ];
    for (frame, expected) in &with_reject {
        let i = connect_sending(&mut w, frame);
        let c = &w.clients[i];
        assert_eq!(c.rejected_code(), Some(*expected), "{}", expected.name());
        assert_eq!(c.close_code(), code(*expected));
    }

    // Without a Reject: a violation, no datagrams, a timeout...
    let violation = connect_sending(&mut w, &[0x03, 0x1f, 0xff, 0x01]);
    let no_datagrams = w.connect_with(&ticket(8), ConnectOpts::no_datagrams());
    let silent = w.connect(&ticket(9));
    w.clients[silent].auto_hello = false;
    w.run_for(Duration::from_secs(6));
    // ... ABUSE and SERVER_DRAINING after Welcome.
    // (From an address of its own: the ABUSE close bans its address, §8.)
    let abuser = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let abused = w.connect_with(&ticket(10), ConnectOpts::from_ip(abuser));
    w.settle();
    assert!(w.clients[abused].welcomed());
    w.engine.admission_mut().decision = AdmitDecision::Close(CloseCode::Abuse);
    w.clients[abused].send_datagram(&[0x1f, 0xff, 1]);
    w.settle();
    w.engine.admission_mut().decision = AdmitDecision::Admit;
    let drained = w.connect_welcomed(&ticket(11));
    w.engine.begin_drain(w.now, &mut w.links);
    w.settle();
    for (i, expected) in [
        (violation, CloseCode::ProtocolViolation),
        (no_datagrams, CloseCode::DatagramsRequired),
        (silent, CloseCode::HelloTimeout),
        (abused, CloseCode::Abuse),
        (drained, CloseCode::ServerDraining),
    ] {
        let c = &w.clients[i];
        assert_eq!(c.close_code(), code(expected), "{}", expected.name());
        assert_eq!(c.rejected_code(), None, "{}", expected.name());
    }

    let mut config = Config::default();
    config.gateway.connections_max = 1;
    let mut full = World::scripted(config);
    full.connect_welcomed(&ticket(1));
    full.connect(&ticket(2));
    full.settle();
    assert_eq!(full.clients[1].close_code(), code(CloseCode::ServerFull));
    assert_eq!(full.clients[1].rejected_code(), None);
}

// 4. Any ticket problem is BAD_TICKET with a Reject, even a ticket_len
//    over 512; a ticket_len that disagrees with the frame is a violation.
#[test]
fn p04_ticket_len_over_512_is_a_bad_ticket_and_a_length_mismatch_violates() {
    let mut w = world();
    let long = connect_sending(&mut w, &raw_hello_frame(1, 513, &[b'A'; 513]));
    let cut = connect_sending(&mut w, &raw_hello_frame(1, 600, b"AQAA"));
    let garbage = connect_sending(&mut w, &hello_frame(1, &[b'A'; 512]));
    for i in [long, cut, garbage] {
        assert_eq!(w.clients[i].rejected_code(), Some(CloseCode::BadTicket));
        assert_eq!(w.clients[i].close_code(), code(CloseCode::BadTicket));
    }
    let t = ticket(7);
    let short = connect_sending(&mut w, &raw_hello_frame(1, 88, t.as_bytes()));
    let extra = connect_sending(&mut w, &raw_hello_frame(1, 86, t.as_bytes()));
    for i in [short, extra] {
        assert_eq!(
            w.clients[i].close_code(),
            code(CloseCode::ProtocolViolation)
        );
        assert_eq!(w.clients[i].rejected_code(), None);
    }
    assert_eq!(w.engine.counters().tickets_bad, 3);
    assert!(w.seen.is_empty(), "no session began");
}

// 5. The checks come in the documented order.
#[test]
fn p05_checks_come_in_order_datagrams_version_ticket_zone() {
    let mut w = world();
    let expired_far = ticket_with(&KeySet::dev(), 7, UNIX_NOW - 3600);
    // Version before layout and ticket: a v2 Hello v1 cannot even decode.
    let v2 = connect_sending(&mut w, &raw_hello_frame(2, 600, b"?"));
    let v2_expired = connect_sending(&mut w, &hello_frame(2, expired_far.as_bytes()));
    // Ticket before zone: an expired ticket for a zone nobody serves.
    let expired_unknown_zone = KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(7),
            zone: ZoneId(0xffff_ffff),
            issued_at_s: UNIX_NOW - 7200,
            expires_at_s: UNIX_NOW - 3600,
        })
        .unwrap();
    let expired_unknown = connect_sending(&mut w, &hello_frame(1, expired_unknown_zone.as_bytes()));
    // Datagrams before everything: the Hello is never read.
    let i = w.connect_with(&expired_far, ConnectOpts::no_datagrams());
    w.clients[i].hello = hello_frame(2, b"?");
    w.settle();
    let expect = [
        (v2, CloseCode::UnsupportedVersion),
        (v2_expired, CloseCode::UnsupportedVersion),
        (expired_unknown, CloseCode::TicketExpired),
        (i, CloseCode::DatagramsRequired),
    ];
    for (i, expected) in expect {
        assert_eq!(w.clients[i].close_code(), code(expected), "client {i}");
    }
}

// 6. Strict base64url, surrounding ASCII whitespace ignored.
#[test]
fn p06_ticket_text_is_strict_base64url_trimmed_of_surrounding_whitespace() {
    let mut w = world();
    let t = ticket(7);
    let newline = connect_sending(&mut w, &hello_frame(1, format!("{t}\n").as_bytes()));
    let padded = format!("  {t}=\r\n");
    let crlf_padded = connect_sending(&mut w, &hello_frame(1, padded.as_bytes()));
    for i in [newline, crlf_padded] {
        assert!(w.clients[i].welcomed(), "{}", closed_with(&w, i));
    }
    // The same ticket with the last character's unused low bits set.
    let mut bad = t.clone().into_bytes();
    let last = bad.len() - 1;
    let index = BASE64URL.iter().position(|&c| c == bad[last]).unwrap();
    assert_eq!(index & 0b11, 0, "minted tickets are canonical");
    bad[last] = BASE64URL[index | 0b01];
    let inside = format!("{} {}", &t[..40], &t[40..]);
    for text in [bad, inside.into_bytes(), format!("{t}\u{b}").into_bytes()] {
        let i = connect_sending(&mut w, &hello_frame(1, &text));
        assert_eq!(w.clients[i].close_code(), code(CloseCode::BadTicket));
    }
}

// 7. The Hello timeout runs from the end of the QUIC handshake.
#[test]
fn p07_hello_timeout_starts_when_the_handshake_completes() {
    let mut w = world();
    let i = w.connect(&ticket(7));
    w.clients[i].auto_hello = false;
    let start = w.now;
    // The client's first flight reaches the gateway and the gateway's answer
    // reaches the client; the client's last flight (its TLS Finished, which
    // completes the gateway's handshake) waits 3 s.
    let addr = w.clients[i].addr;
    let mut buf = Vec::new();
    while let Some(t) = w.clients[i].conn.poll_transmit(start, 1, &mut buf) {
        w.engine
            .handle_datagram(start, addr, None, t.ecn, &buf[..t.size], &mut w.links);
        buf.clear();
    }
    let mut answer = Vec::new();
    while let Some(t) = w.engine.poll_transmit(start, 1, &mut buf) {
        answer.push((t.ecn, buf[..t.size].to_vec()));
    }
    assert!(!answer.is_empty());
    for (ecn, bytes) in answer {
        w.clients[i].receive(start, ecn, &bytes);
    }
    w.now = start + Duration::from_secs(3);
    // Counted from the first packet, the timeout would fire at 5 s.
    w.run_for(Duration::from_millis(4_900));
    assert_eq!(w.clients[i].closed, None);
    assert_eq!(w.engine.counters().hello_timeouts, 0);
    w.run_for(Duration::from_millis(200));
    assert_eq!(w.clients[i].close_code(), code(CloseCode::HelloTimeout));
}

// 8. What the gateway advertises, and what it does with a datagram between
//    the Welcome limit and that value.
#[test]
fn p08_gateway_advertises_8800_and_drops_datagrams_over_the_welcome_limit() {
    let mut w = world();
    w.connect_welcomed(&ticket(7));
    let mut scratch = Vec::new();
    let advertised = peer_params::max_datagram_frame_size(&w.clients[0].conn, &mut scratch);
    let limit = w.clients[0]
        .session
        .info()
        .unwrap()
        .datagram_message_bytes_max;
    assert_eq!(limit, 1100);
    assert_eq!(
        advertised,
        Some(8 * 1100),
        "min(65535, 8 x the Welcome limit)"
    );
    let over = 1150;
    assert!(w.clients[0].conn.datagrams().max_size().unwrap() >= over);
    let mut datagram = vec![0xab; over];
    datagram[..2].copy_from_slice(&types::ECHO_CRITICAL.to_be_bytes());
    w.clients[0].send_datagram(&datagram);
    w.settle();
    assert_eq!(w.engine.counters().oversize_datagrams, 1);
    assert!(w.clients[0].messages().is_empty());
    assert_eq!(
        w.clients[0].closed, None,
        "no error, the session carries on"
    );
    datagram.truncate(usize::from(limit));
    w.clients[0].send_datagram(&datagram);
    w.settle();
    assert_eq!(w.clients[0].messages().len(), 1);
}

// 9. Over the per-address handshake limit: a Retry, and the connection
//    comes in one round trip later without spending the budget (§8).
#[test]
fn p09_handshakes_over_the_per_ip_limit_get_a_retry_then_come_in() {
    let mut config = Config::default();
    config.gateway.handshakes_per_ip_per_s = 1;
    config.gateway.handshake_burst = 1;
    let mut w: World<GovernorAdmission> = World::governed(config);
    let nat = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let first = w.connect_with(&ticket(1), ConnectOpts::from_ip(nat));
    w.settle();
    let second = w.connect_with(&ticket(2), ConnectOpts::from_ip(nat));
    let elsewhere = w.connect_with(
        &ticket(3),
        ConnectOpts::from_ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
    );
    // Well before the bucket refills (1 s).
    w.run_for(Duration::from_millis(200));
    assert!(w.clients[first].welcomed());
    assert!(
        w.clients[elsewhere].welcomed(),
        "other addresses are not held up"
    );
    assert!(w.clients[second].welcomed(), "{}", closed_with(&w, second));
    let c = w.engine.counters();
    assert_eq!((c.handshakes_ignored, c.retries_sent), (1, 1));
    let h = w.engine.admission_mut().handshakes.counters();
    assert_eq!((h.allowed, h.refused), (2, 1));
}

// 10. Zones outside `shards.zones` get UNKNOWN_ZONE with a Reject.
#[test]
fn p10_tickets_for_zones_outside_shards_zones_get_unknown_zone() {
    let mut default = world();
    for zone in [1024, 0xffff_ffff] {
        default.connect(&ticket_in(7, ZoneId(zone)));
    }
    default.connect(&ticket_in(8, ZoneId(1023)));
    default.settle();
    for i in 0..2 {
        let c = &default.clients[i];
        assert_eq!(c.close_code(), code(CloseCode::UnknownZone));
        let reason = c.events.iter().find_map(|e| match e {
            ClientEvent::Rejected(r) => Some(r.reason.clone()),
            _ => None,
        });
        assert_eq!(reason.as_deref(), Some("unknown zone"));
    }
    assert!(default.clients[2].welcomed());
    assert_eq!(default.engine.counters().unknown_zones, 2);
    assert_eq!(default.seen, vec![Seen::Join(PlayerId(8), ZoneId(1023))]);

    let mut config = Config::default();
    config.shards.zones = ZoneSet::parse("5,100-200").unwrap();
    let mut w = World::scripted(config);
    for zone in [5, 150, 42, 201] {
        w.connect(&ticket_in(1, ZoneId(zone)));
    }
    w.settle();
    let welcomed: Vec<bool> = w.clients.iter().map(support::Client::welcomed).collect();
    assert_eq!(welcomed, [true, true, false, false]);
    assert_eq!(w.clients[2].close_code(), code(CloseCode::UnknownZone));
}

// 11. Application (0x1d) and transport (0x1c) closes share numbers.
#[test]
fn p11_close_codes_are_read_with_the_frame_type() {
    let mut w = world();
    let old = connect_sending(&mut w, &hello_frame(2, ticket(7).as_bytes()));
    w.engine.begin_drain(w.now, &mut w.links);
    let refused = w.connect(&ticket(8));
    w.settle();
    // Both say 2; only the application close means UNSUPPORTED_VERSION.
    match &w.clients[old].closed {
        Some(ConnectionError::ApplicationClosed(close)) => {
            assert_eq!(close.error_code.into_inner(), 0x02);
        }
        other => panic!("old client: {other:?}"),
    }
    match &w.clients[refused].closed {
        Some(ConnectionError::ConnectionClosed(close)) => {
            assert_eq!(close.error_code, TransportErrorCode::CONNECTION_REFUSED);
            assert_eq!(u64::from(close.error_code), 0x02);
        }
        other => panic!("refused client: {other:?}"),
    }

    let mut w = world();
    let opts = ConnectOpts {
        alpn: b"lanegate/2",
        ..ConnectOpts::default()
    };
    let wrong_alpn = w.connect_with(&ticket(9), opts);
    w.settle();
    match &w.clients[wrong_alpn].closed {
        Some(ConnectionError::ConnectionClosed(close)) => {
            assert_eq!(u64::from(close.error_code), 0x0178, "TLS alert 120");
        }
        other => panic!("wrong ALPN: {other:?}"),
    }
}

// 12. The fingerprint is SHA-256 over the leaf the client received, as
//     lowercase colon-separated hex.
#[test]
fn p12_fingerprint_is_lowercase_colon_hex_sha256_of_the_leaf_der() {
    let mut w = world();
    w.connect_welcomed(&ticket(7));
    let identity = w.clients[0].conn.crypto_session().peer_identity().unwrap();
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().unwrap();
    let digest = Sha256::digest(chain[0].as_ref());
    let spec: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(w.fingerprint, spec.join(":"));
    assert_eq!(w.fingerprint.len(), 95);
    assert!(
        w.fingerprint
            .bytes()
            .all(|b| b == b':' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(
        lanegate_client::verify::fingerprint(chain[0].as_ref()).to_vec(),
        digest.to_vec(),
        "the SDK pins the same digest"
    );
}
