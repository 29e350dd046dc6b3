//! Every test vector printed in `docs/protocol.md` is checked here, and every
//! vector this file knows must be printed there, so the spec and the code
//! cannot drift apart.

use std::collections::BTreeMap;

use lanegate_common::frame::{FrameReader, put_frame, put_varint};
use lanegate_common::ids::{KeyId, PlayerId, SessionId, ZoneId};
use lanegate_common::ticket::{KeySet, Secret, TICKET_BYTES, Ticket, TicketError};
use lanegate_common::wire::{
    CloseCode, GameMessage, Hello, LaneLimit, Message, Welcome, ZoneChanged, ZoneReset, reject,
};
use sha2::{Digest, Sha256};

const PROTOCOL_MD: &str = include_str!("../../docs/protocol.md");

enum Vector {
    Hex(Vec<u8>),
    Text(String),
}

/// Parses the ```vector blocks: `name: ...` then `hex: ...` (continued on
/// indented lines) or `text: ...`.
fn vectors() -> BTreeMap<String, Vector> {
    let mut out = BTreeMap::new();
    for block in PROTOCOL_MD.split("```vector\n").skip(1) {
        let body = block.split("```").next().expect("block is closed");
        let mut name = None;
        let mut hex = String::new();
        let mut text = None;
        let mut in_hex = false;
        for line in body.lines() {
            if let Some(n) = line.strip_prefix("name: ") {
                name = Some(n.trim().to_owned());
            } else if let Some(h) = line.strip_prefix("hex: ") {
                hex.push_str(h);
                in_hex = true;
            } else if let Some(t) = line.strip_prefix("text: ") {
                text = Some(t.trim().to_owned());
            } else if in_hex && line.starts_with(' ') {
                hex.push_str(line);
            }
        }
        let name = name.expect("every vector has a name");
        let v = match text {
            Some(t) => Vector::Text(t),
            None => Vector::Hex(hex::decode(hex.replace(' ', "")).expect("valid hex")),
        };
        assert!(out.insert(name.clone(), v).is_none(), "vector {name} twice");
    }
    out
}

fn hex_of(v: &BTreeMap<String, Vector>, name: &str) -> Vec<u8> {
    match v.get(name) {
        Some(Vector::Hex(b)) => b.clone(),
        _ => panic!("docs/protocol.md has no hex vector `{name}`"),
    }
}

fn text_of(v: &BTreeMap<String, Vector>, name: &str) -> String {
    match v.get(name) {
        Some(Vector::Text(t)) => t.clone(),
        _ => panic!("docs/protocol.md has no text vector `{name}`"),
    }
}

fn encode(msg: Message<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    msg.encode(&mut out).expect("vector messages encode");
    out
}

fn example_claims() -> Ticket {
    Ticket {
        key_id: KeyId(7),
        player: PlayerId(123_456_789),
        zone: ZoneId(42),
        issued_at_s: 1_767_225_600,
        expires_at_s: 1_767_229_200,
    }
}

const CHECKED: &[&str] = &[
    "ticket-secret",
    "ticket-body",
    "ticket-mac",
    "ticket-text",
    "hello",
    "hello-frame",
    "welcome",
    "reject",
    "reject-unknown-zone",
    "close-unknown-zone",
    "close-connection-refused",
    "fingerprint-input",
    "fingerprint-text",
    "zone-reset",
    "zone-changed",
    "echo-datagram",
    "echo-frame",
    "frame-prefix-102",
];

#[test]
fn every_vector_in_the_spec_is_checked() {
    let v = vectors();
    let printed: Vec<&str> = v.keys().map(String::as_str).collect();
    let mut checked = CHECKED.to_vec();
    checked.sort_unstable();
    assert_eq!(printed, checked, "spec vectors and checked vectors differ");
}

#[test]
fn ticket_worked_example() {
    let v = vectors();
    let secret = hex_of(&v, "ticket-secret");
    assert_eq!(secret, b"lanegate-example-secret-0123456789abcdef");
    let keys = KeySet::new(vec![(KeyId(7), Secret::new(&secret).unwrap())]).unwrap();
    let claims = example_claims();

    assert_eq!(claims.body().to_vec(), hex_of(&v, "ticket-body"));
    let raw = keys.mint_bytes(&claims).unwrap();
    assert_eq!(raw.len(), TICKET_BYTES);
    assert_eq!(raw[33..].to_vec(), hex_of(&v, "ticket-mac"));
    let text = text_of(&v, "ticket-text");
    assert_eq!(keys.mint(&claims).unwrap(), text);

    // The spec's statements about verification times.
    assert_eq!(keys.verify(text.as_bytes(), 1_767_225_600, 30), Ok(claims));
    assert!(matches!(
        keys.verify(text.as_bytes(), 1_767_229_231, 30),
        Err(TicketError::Expired { .. })
    ));
}

#[test]
fn control_message_vectors() {
    let v = vectors();
    let ticket = text_of(&v, "ticket-text");
    let hello = Message::Hello(Hello {
        version: 1,
        ticket: ticket.as_bytes(),
    });
    assert_eq!(encode(hello), hex_of(&v, "hello"));
    assert_eq!(Message::decode(&hex_of(&v, "hello")), Ok(hello));

    let mut framed = Vec::new();
    put_frame(&encode(hello), &mut framed);
    assert_eq!(framed, hex_of(&v, "hello-frame"));

    let limit = |rate_per_s, burst| LaneLimit { rate_per_s, burst };
    let welcome = Message::Welcome(Welcome {
        version: 1,
        session: SessionId(0x0100_0000_0000_0001),
        player: PlayerId(123_456_789),
        zone: ZoneId(42),
        tick_rate_hz: 30,
        datagram_message_bytes_max: 1100,
        stream_message_bytes_max: 16384,
        lane_limits: [limit(240, 60), limit(120, 60), limit(20, 20), limit(10, 20)],
    });
    let bytes = hex_of(&v, "welcome");
    assert_eq!(bytes.len(), 65, "the spec says Welcome is 65 bytes");
    assert_eq!(encode(welcome), bytes);
    assert_eq!(Message::decode(&bytes), Ok(welcome));

    let rej = Message::Reject(reject(CloseCode::TicketExpired, "ticket expired"));
    assert_eq!(encode(rej), hex_of(&v, "reject"));
    assert_eq!(Message::decode(&hex_of(&v, "reject")), Ok(rej));

    let zr = Message::ZoneReset(ZoneReset { zone: ZoneId(42) });
    assert_eq!(encode(zr), hex_of(&v, "zone-reset"));
    assert_eq!(Message::decode(&hex_of(&v, "zone-reset")), Ok(zr));

    let zc = Message::ZoneChanged(ZoneChanged {
        zone: ZoneId(7),
        tick_rate_hz: 30,
    });
    assert_eq!(encode(zc), hex_of(&v, "zone-changed"));
    assert_eq!(Message::decode(&hex_of(&v, "zone-changed")), Ok(zc));
}

#[test]
fn unknown_zone_and_close_frame_vectors() {
    let v = vectors();
    let rej = Message::Reject(reject(CloseCode::UnknownZone, "unknown zone"));
    let bytes = hex_of(&v, "reject-unknown-zone");
    assert_eq!(encode(rej), bytes);
    assert_eq!(Message::decode(&bytes), Ok(rej));

    // RFC 9000 §19.19: type, error code, (transport only) the frame type
    // that caused it, reason length, reason; the gateway sends no reason.
    let mut application = vec![0x1d];
    put_varint(u64::from(CloseCode::UnknownZone.code()), &mut application);
    put_varint(0, &mut application);
    assert_eq!(application, hex_of(&v, "close-unknown-zone"));
    let connection_refused = 0x02;
    let mut transport = vec![0x1c];
    for field in [connection_refused, 0, 0] {
        put_varint(field, &mut transport);
    }
    assert_eq!(transport, hex_of(&v, "close-connection-refused"));
    assert_eq!(
        CloseCode::from_code(connection_refused).map(CloseCode::name),
        Some("UNSUPPORTED_VERSION"),
        "the example collides with an application code, as §7 says"
    );
}

#[test]
fn fingerprint_vector() {
    let v = vectors();
    let digest = Sha256::digest(hex_of(&v, "fingerprint-input"));
    let text: Vec<String> = digest.iter().map(|b| format!("{b:02x}")).collect();
    let expected = text_of(&v, "fingerprint-text");
    assert_eq!(text.join(":"), expected);
    assert_eq!(expected.len(), 95, "§1 says 95 characters");
}

#[test]
fn echo_and_framing_vectors() {
    let v = vectors();
    let echo = Message::Game(GameMessage {
        ty: 0x1fff,
        payload: &1u64.to_be_bytes(),
    });
    assert_eq!(encode(echo), hex_of(&v, "echo-datagram"));

    let frame = hex_of(&v, "echo-frame");
    let mut reader = FrameReader::new(16384);
    let mut got = Vec::new();
    reader.feed(&frame, |m| got.push(m.to_vec())).unwrap();
    assert_eq!(got, vec![encode(echo)]);

    let big = encode(Message::Game(GameMessage {
        ty: 0x3fff,
        payload: &[0xab; 100],
    }));
    let mut framed = Vec::new();
    put_frame(&big, &mut framed);
    assert_eq!(framed[..4].to_vec(), hex_of(&v, "frame-prefix-102"));
}

#[test]
fn close_code_table_matches_the_enum() {
    for code in CloseCode::ALL {
        let row = format!("| `0x{:02x}` | `{}`", code.code(), code.name());
        assert!(
            PROTOCOL_MD.contains(&row),
            "docs/protocol.md §7 lacks the row for {}",
            code.name()
        );
    }
}
