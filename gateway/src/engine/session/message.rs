//! What one complete message from a control or uni stream does, by phase:
//! before `Welcome` the `Hello` checks (`hello.rs`) and the `Welcome` or
//! `Reject` they lead to; after it, a game message for the sink; while
//! handshaking or closing, nothing.

use lanegate_common::frame::put_frame;
use lanegate_common::lanes::MessageClass;
use lanegate_common::wire::{self, CloseCode, Message, PROTOCOL_VERSION, Transport, Welcome};

use super::Phase;
use super::hello;
use super::interface::{CloseCause, GameIn, SessionCtx, SessionSink};

/// One complete message from a stream.
pub(super) fn on_stream_message(
    phase: &mut Phase,
    message: &[u8],
    ctx: &SessionCtx<'_>,
    reply: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    sink: &mut impl SessionSink,
) -> Result<(), (CloseCode, CloseCause)> {
    match *phase {
        Phase::AwaitingHello { .. } => match hello::check(message, ctx) {
            Ok(est) => {
                let welcome = Welcome {
                    version: PROTOCOL_VERSION,
                    session: est.session,
                    player: est.player,
                    zone: est.zone,
                    tick_rate_hz: ctx.welcome.tick_rate_hz,
                    datagram_message_bytes_max: ctx.welcome.datagram_message_bytes_max,
                    stream_message_bytes_max: ctx.welcome.stream_message_bytes_max,
                    lane_limits: ctx.welcome.lane_limits,
                };
                push_message(&Message::Welcome(welcome), reply, scratch);
                *phase = Phase::Established(est);
                sink.established(est);
                Ok(())
            }
            Err(refusal) => {
                if let Some(reason) = refusal.reject {
                    let reject = wire::reject(refusal.code, reason);
                    push_message(&Message::Reject(reject), reply, scratch);
                }
                Err((refusal.code, refusal.cause))
            }
        },
        Phase::Established(est) => {
            let Ok(ty) = wire::peek_type(message) else {
                // The frame reader guarantees two bytes; keep the check anyway.
                return Err((CloseCode::ProtocolViolation, CloseCause::Malformed));
            };
            let MessageClass::Game(lane) = ctx.lanes.classify(ty) else {
                return Err((
                    CloseCode::ProtocolViolation,
                    CloseCause::ControlAfterWelcome,
                ));
            };
            let game = GameIn {
                ty,
                lane,
                transport: Transport::Stream,
                payload: &message[2..],
            };
            sink.game(est, game)
                .map_err(|code| (code, CloseCause::Admission))
        }
        Phase::Handshake | Phase::Closing { .. } => Ok(()),
    }
}

/// Encodes `message` and appends it to `reply` as a frame. Our own messages
/// always encode (fixed layouts, bounded reasons).
pub(super) fn push_message(message: &Message<'_>, reply: &mut Vec<u8>, scratch: &mut Vec<u8>) {
    scratch.clear();
    if message.encode(scratch).is_ok() {
        put_frame(scratch, reply);
    }
}
