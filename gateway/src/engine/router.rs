//! A session's output: admission, then the core's shard links.
//!
//! The session state machine (`session.rs`) reports what happened through
//! [`SessionSink`]; the [`Router`] asks [`Admission`] about each game
//! message and hands what passes to the [`GatewayPort`], which copies the
//! payload once into its pool and pushes it once. What the port refuses it
//! counts itself; the router counts only admission's drops and what went
//! through.

use std::time::Instant;

use lanegate_common::wire::CloseCode;
use lanegate_shard::port::GatewayPort;

use super::counters::Counters;
use super::session::{DatagramOutcome, Established, GameIn, SessionSink};
use super::{Admission, AdmitDecision, ConnSlot, Offence};

/// Routes a session's output: admission, then the shard links.
pub(super) struct Router<'a, A> {
    pub(super) admission: &'a mut A,
    pub(super) links: &'a mut GatewayPort,
    pub(super) counters: &'a mut Counters,
    pub(super) conn: ConnSlot,
    pub(super) now: Instant,
    /// When the datagram that brought this output was received (the
    /// kernel's timestamp where there is one): the shard link measures
    /// the gateway's latency from it.
    pub(super) received_at: Instant,
}

impl<A: Admission> Router<'_, A> {
    /// Counts a datagram the session dropped and reports it to admission
    /// as an [`Offence`]; the close code if admission closes.
    pub(super) fn datagram_offence(&mut self, outcome: DatagramOutcome) -> Option<CloseCode> {
        let c = &mut *self.counters;
        let offence = match outcome {
            DatagramOutcome::Malformed => {
                c.malformed_datagrams += 1;
                Offence::MalformedDatagram
            }
            DatagramOutcome::Oversize => {
                c.oversize_datagrams += 1;
                Offence::OversizeDatagram
            }
            DatagramOutcome::Control => {
                c.control_datagrams += 1;
                Offence::ControlDatagram
            }
            DatagramOutcome::Delivered | DatagramOutcome::NotEstablished => return None,
        };
        self.offence(offence)
    }

    /// Counts a client uni stream that ended and reports it to admission;
    /// the close code if admission closes.
    pub(super) fn stream_ended(&mut self) -> Option<CloseCode> {
        self.counters.uni_streams_ended += 1;
        self.offence(Offence::StreamEnded)
    }

    fn offence(&mut self, offence: Offence) -> Option<CloseCode> {
        match self.admission.offence(self.now, self.conn, offence) {
            AdmitDecision::Close(code) => Some(code),
            AdmitDecision::Admit | AdmitDecision::Drop => None,
        }
    }
}

impl<A: Admission> SessionSink for Router<'_, A> {
    fn established(&mut self, session: Established) {
        self.counters.sessions_opened += 1;
        self.counters.sessions_open += 1;
        self.admission.on_open(self.now, self.conn);
        // A refused join is counted by the port (`joins_refused`).
        let _ = self
            .links
            .join(session.session, session.player, session.zone);
    }

    fn game(&mut self, session: Established, message: GameIn<'_>) -> Result<(), CloseCode> {
        self.counters.messages_in[message.lane.index()] += 1;
        match self.admission.admit(self.now, self.conn, message.lane) {
            AdmitDecision::Admit => {}
            AdmitDecision::Drop => {
                self.counters.admit_dropped[message.lane.index()] += 1;
                return Ok(());
            }
            AdmitDecision::Close(code) => return Err(code),
        }
        let sent = self.links.send(
            self.received_at,
            session.session,
            session.player,
            session.zone,
            message.lane,
            message.transport,
            message.ty,
            message.payload,
        );
        if sent.is_ok() {
            self.counters.messages_to_shard += 1;
        }
        Ok(())
    }
}
