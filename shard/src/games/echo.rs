//! The echo game: replies to each diagnostic echo message with the same
//! type, payload and transport, so a client can measure each lane's round
//! trip.

use lanegate_common::wire::types;

use crate::game::{Game, Incoming, Msg, Outbox};

/// Echoes `ECHO_CRITICAL`, `ECHO_HIGH`, `ECHO_NORMAL` and `ECHO_BULK`
/// (`0x1fff`, `0x2fff`, `0x3fff`, `0x4fff`) back to the sender unchanged, on
/// the transport they came on. Other types are ignored.
#[derive(Debug, Default, Clone, Copy)]
pub struct Echo;

impl Echo {
    /// Whether `ty` is one of the echo types.
    pub fn handles(ty: u16) -> bool {
        types::ECHO.contains(&ty)
    }

    /// Echoes `msg` if it is an echo type; returns whether it was.
    pub fn echo(out: &mut Outbox<'_>, msg: &Incoming<'_>) -> bool {
        if !Self::handles(msg.ty) {
            return false;
        }
        let reply = Msg {
            ty: msg.ty,
            transport: msg.transport,
            payload: msg.payload,
        };
        // A refused echo is counted in the shard's health; nothing else to do.
        let _ = out.send(msg.player, reply);
        true
    }
}

impl Game for Echo {
    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
        Self::echo(out, &msg);
    }
}
