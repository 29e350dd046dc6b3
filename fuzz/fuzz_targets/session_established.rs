//! An established session (`gateway::engine::session`) fed arbitrary input:
//! after a valid `Hello`, a fuzzer-chosen sequence of control-stream bytes,
//! uni-stream bytes, datagrams, stream ends and timer checks. The session
//! must never panic, never hand on a message beyond its bounds or from
//! the wrong lane, keep its reply buffer bounded, and after it closes pass
//! on nothing more.
#![no_main]

use std::time::{Duration, Instant};

use lanegate_common::config::ZoneSet;
use lanegate_common::frame::put_frame;
use lanegate_common::ids::{PlayerId, SessionId, ZoneId};
use lanegate_common::lanes::{Lane, LaneTable, MessageClass};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};
use lanegate_common::wire::{CloseCode, Hello, LaneLimit, Message, PROTOCOL_VERSION};
use lanegate_gateway::engine::admit::BanList;
use lanegate_gateway::engine::session::{
    Established, GameIn, Session, SessionCtx, SessionSink, StreamRef, WelcomeParams,
};
use libfuzzer_sys::fuzz_target;

const NOW_S: u64 = 1_767_225_600;
const STREAM_MAX: usize = 300;
const DGRAM_MAX: usize = 100;
/// Replies the session may write in one call before the engine takes them:
/// `Welcome` (or a `Reject`) and nothing of unbounded size.
const REPLY_MAX: usize = 512;

#[derive(Default)]
struct Sink {
    lanes: Option<LaneTable>,
    joined: u32,
    games: u64,
    /// Close on the nth game message, as admission might.
    close_at: Option<u64>,
}

impl SessionSink for Sink {
    fn established(&mut self, _session: Established) {
        self.joined += 1;
    }

    fn game(&mut self, _session: Established, m: GameIn<'_>) -> Result<(), CloseCode> {
        let max = match m.transport {
            lanegate_common::wire::Transport::Datagram => DGRAM_MAX,
            lanegate_common::wire::Transport::Stream => STREAM_MAX,
        };
        assert!(m.payload.len() + 2 <= max, "a message over its bound");
        if let Some(lanes) = &self.lanes {
            assert_eq!(lanes.classify(m.ty), MessageClass::Game(m.lane));
        }
        self.games += 1;
        match self.close_at {
            Some(n) if self.games == n => Err(CloseCode::Abuse),
            _ => Ok(()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&knobs, mut ops)) = data.split_first() else {
        return;
    };
    let lanes = LaneTable::new(&LaneTable::default_rules(), Lane::Bulk).expect("default lanes");
    let keys = KeySet::dev();
    let zones = ZoneSet::default();
    let welcome = WelcomeParams {
        tick_rate_hz: 30,
        datagram_message_bytes_max: DGRAM_MAX as u16,
        stream_message_bytes_max: STREAM_MAX as u32,
        lane_limits: [LaneLimit {
            rate_per_s: 10,
            burst: 20,
        }; 4],
    };
    let bans = BanList::new(Duration::from_secs(60), 4);
    let ctx = SessionCtx {
        lanes: &lanes,
        keys: &keys,
        zones: &zones,
        unix_now_s: NOW_S,
        clock_skew_s: 30,
        welcome: &welcome,
        session: SessionId(77),
        shard_available: true,
        bans: &bans,
        now: Instant::now(),
    };
    let mut sink = Sink {
        lanes: Some(lanes.clone()),
        close_at: (knobs & 0x80 != 0).then_some(u64::from(knobs & 0x7f)),
        ..Sink::default()
    };

    // A valid Hello, in the zone the default `shards.zones` serves.
    let ticket = keys
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(7),
            zone: ZoneId(42),
            issued_at_s: NOW_S - 60,
            expires_at_s: NOW_S + 3600,
        })
        .expect("a dev ticket");
    let mut body = Vec::new();
    Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        ticket: ticket.as_bytes(),
    })
    .encode(&mut body)
    .expect("a Hello encodes");
    let mut hello = Vec::new();
    put_frame(&body, &mut hello);

    let t0 = Instant::now();
    let mut session = Session::new(STREAM_MAX, DGRAM_MAX);
    session.start(t0 + Duration::from_secs(5));
    session
        .on_stream(StreamRef::Control, &hello, &ctx, &mut sink)
        .expect("the Hello is accepted");
    assert!(session.established().is_some());
    assert_eq!(sink.joined, 1);
    session.take_reply().clear();

    let mut closed = false;
    while let Some((&op, rest)) = ops.split_first() {
        // op: kind in the low 3 bits, a stream id in the next 3, length
        // from the next byte.
        let Some((&len, rest)) = rest.split_first() else {
            break;
        };
        let n = usize::from(len).min(rest.len());
        let (bytes, rest) = rest.split_at(n);
        ops = rest;
        let uni = StreamRef::Uni(u64::from((op >> 3) & 0x7) * 4 + 2);
        let games_before = sink.games;
        let result = match op & 0x7 {
            0 | 1 => session
                .on_stream(StreamRef::Control, bytes, &ctx, &mut sink)
                .map(|_| ()),
            2 | 3 => session.on_stream(uni, bytes, &ctx, &mut sink).map(|_| ()),
            4 => session.on_datagram(bytes, &ctx, &mut sink).map(|_| ()),
            5 => session.on_stream_end(uni, op & 0x40 != 0),
            6 => session.on_stream_end(StreamRef::Control, op & 0x40 != 0),
            _ => session.on_timeout(t0 + Duration::from_millis(u64::from(len) * 100)),
        };
        let reply = session.take_reply();
        assert!(
            reply.len() <= REPLY_MAX,
            "reply buffer grew to {}",
            reply.len()
        );
        reply.clear();
        if closed {
            assert!(result.is_ok(), "a closed session closes once");
            assert_eq!(sink.games, games_before, "nothing passes after the close");
        }
        if let Err(close) = result {
            assert!(close.left.is_some(), "an established session leaves");
            closed = true;
        }
    }
    assert_eq!(sink.joined, 1, "joined once, whatever came after");
});
