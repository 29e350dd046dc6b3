//! One gateway core's thread: the loop that drives its engine, its shard
//! links, the shards it hosts, its steering rings and its IO backend.
//!
//! The steps of one turn, the drain, and why the wait is shaped as it is
//! are described once, in `docs/ARCHITECTURE.md` ("The running gateway");
//! `Core::turn` follows that list step for step. Steady state allocates
//! nothing here: the receive batch, the transmit buffer, the steering slots
//! and the engine's arenas are all reused.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::engine::admit::{AdmissionTable, GovernorAdmission, HandshakeLimiter};
use crate::engine::{Engine, EngineParams, OVERFLOW_SLOTS};
use crate::log_limit::WarnLimit;
use crate::steer::SteerEnds;
use lanegate_common::config::Config;
use lanegate_common::wake::Doorbell;
use lanegate_shard::ShardConfig;
use lanegate_shard::port::{GatewayPort, Shedding};
use lanegate_shard::wiring::CoreEnds;
use lanegate_shard::worker::HostedShard;
use lanegate_udp::{
    self as sys, BoundSocket, Ecn, FdWaker, IoLimits, RecvBatch, Transmit, UdpIo, WakeFd,
};
use quinn_proto::EcnCodepoint;
use tracing::{debug, info, warn};

use super::overload::{CoreLoad, CoreSample, KernelDropBoard};
use super::{Ready, RuntimeError};
use crate::metrics::{CorePublisher, CoreSnapshot, OverloadReading};

/// Bytes reserved per GSO segment in the transmit buffer: an Ethernet MTU.
const SEGMENT_BYTES: usize = 1500;

/// Transmits (datagrams or GSO trains) sent per loop turn at most, so a
/// burst of output cannot keep the core from receiving: eight receive
/// batches' worth. What is left goes out next turn, which then does not
/// wait for packets.
const TRANSMITS_PER_TURN_MAX: usize = 256;

/// Everything one core needs, moved onto its thread.
pub struct CoreSetup {
    /// Index among the gateway cores (the byte in its connection ids).
    pub index: usize,
    /// CPU to pin to, if known.
    pub cpu: Option<usize>,
    /// Its socket of the `SO_REUSEPORT` group.
    pub socket: BoundSocket,
    /// Its ends of the shard rings.
    pub ends: CoreEnds,
    /// The shard runtime's limits (the port's backlog and hold sizes).
    pub shard_cfg: ShardConfig,
    /// Its ends of the steering mesh.
    pub steer: SteerEnds,
    /// Shards on this core's CPU, run by its thread.
    pub hosted: Vec<HostedShard>,
    /// Gateway cores that have not finished draining.
    pub cores_busy: Arc<AtomicUsize>,
    /// Its engine's parameters.
    pub params: EngineParams,
    /// The QUIC server configuration all cores share.
    pub server: Arc<quinn_proto::ServerConfig>,
    /// The whole configuration.
    pub config: Arc<Config>,
    /// Rises on the first SIGTERM/SIGINT.
    pub term: Arc<AtomicBool>,
    /// Where to say "serving" (or why not).
    pub ready: Sender<Ready>,
    /// Where to publish its counters for the metrics endpoint.
    pub metrics: CorePublisher,
    /// Where its socket's kernel drops appear.
    pub kernel_drops: Arc<KernelDropBoard>,
}

type CoreEngine = Engine<GovernorAdmission>;

/// Runs the core until it has drained. Errors before serving are also sent
/// on `ready`.
pub fn run(setup: CoreSetup) -> Result<(), RuntimeError> {
    let index = setup.index;
    let ready = setup.ready.clone();
    match start(setup) {
        Ok((core, backend, addr)) => {
            let _ = ready.send(Ok((index, addr, backend)));
            drop(ready);
            core.serve()
        }
        Err(e) => {
            let message = e.to_string();
            let _ = ready.send(Err(e));
            Err(RuntimeError::Core {
                core: index,
                message,
            })
        }
    }
}

struct Core {
    index: usize,
    engine: CoreEngine,
    /// This core's side of the shard links: the engine borrows it for every
    /// input that may send to a shard, and the loop polls it for replies.
    links: GatewayPort,
    io: Box<dyn UdpIo>,
    batch: RecvBatch,
    steer: SteerEnds,
    hosted: Vec<HostedShard>,
    /// This core's doorbell and those of the shards it hosts: rung by
    /// producers while the core sleeps in its receive.
    bells: Vec<Arc<Doorbell>>,
    cores_busy: Arc<AtomicUsize>,
    term: Arc<AtomicBool>,
    ring_poll: Duration,
    drain_timeout: Duration,
    /// Entries read from the shards' rings per turn, at most.
    ring_reads_max: usize,
    /// Steered-in packets handled per turn, at most.
    steer_reads_max: usize,
    /// `observability.latency_histograms`: read the wall clock once a turn
    /// to age the kernel's receive timestamps.
    latency_histograms: bool,
    /// The engine's next datagram, and one that `send_batch` could not take.
    tx_buf: Vec<u8>,
    tx_pending: Option<TxMeta>,
    tx_blocked: u64,
    /// Receives that failed for a passing reason (see [`is_transient`]).
    recv_transient: u64,
    /// The last turn stopped sending at [`TRANSMITS_PER_TURN_MAX`].
    tx_more: bool,
    /// This core's load, sampled for the degradation ladder.
    load: CoreLoad,
    /// Whether the current level was reported stuck.
    stuck_reported: bool,
    /// The ladder's step lines, at most one per [`STEP_LOG_PERIOD`].
    step_warnings: WarnLimit,
    /// Every core socket's kernel receive drops (a ladder signal), as the
    /// shard load thread last read them.
    kernel_drops: Arc<KernelDropBoard>,
    metrics: CorePublisher,
}

#[derive(Clone, Copy)]
struct TxMeta {
    destination: SocketAddr,
    ecn: Option<Ecn>,
    size: usize,
    segment_size: Option<usize>,
    src_ip: Option<IpAddr>,
}

fn start(setup: CoreSetup) -> Result<(Core, sys::BackendKind, SocketAddr), RuntimeError> {
    let CoreSetup {
        index,
        cpu,
        socket,
        ends,
        shard_cfg,
        steer,
        hosted,
        cores_busy,
        params,
        server,
        config,
        term,
        ready: _,
        metrics,
        kernel_drops,
    } = setup;
    if let Some(cpu) = cpu
        && let Err(e) = sys::pin_current_thread(cpu)
    {
        warn!(core = index, cpu, "cannot pin the gateway thread: {e}");
    }
    socket.warn_if_clamped(index);
    let limits = IoLimits {
        receive_timestamps: config.observability.latency_histograms,
        ..IoLimits::default()
    };
    let (mut io, backend) = sys::open(&config.gateway, index, socket, &limits)?;
    let addr = io.local_addr();
    if io.kernel_drops().is_some() {
        kernel_drops.set_own();
    }

    // Shards and other cores ring these bells; the receive wait watches
    // the eventfd their waker writes.
    let wake = WakeFd::new().map_err(|source| RuntimeError::Io {
        what: "creating the wake-up eventfd",
        source,
    })?;
    io.watch(Arc::clone(&wake))
        .map_err(|source| RuntimeError::Io {
            what: "watching the wake-up eventfd",
            source,
        })?;
    let mut bells = vec![Arc::clone(&ends.bell)];
    bells.extend(
        hosted
            .iter()
            .filter(|h| h.wakes_on_messages())
            .map(HostedShard::bell),
    );
    for bell in &bells {
        bell.set_waker(Box::new(FdWaker(Arc::clone(&wake))));
    }

    let now = Instant::now();
    let unix_now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // The admission table is indexed by the engine's connection slot:
    // `connections_max` per core plus the engine's overflow slots.
    let conn_slots_max = params.connections_max + OVERFLOW_SLOTS;
    let admission = GovernorAdmission {
        table: AdmissionTable::new(&config.lanes.limits, &config.admission, conn_slots_max, now)
            .map_err(|e| RuntimeError::Admission(e.to_string()))?,
        handshakes: HandshakeLimiter::new(
            &config.gateway,
            config.gateway.handshake_ips_tracked_max,
            now,
        )
        .map_err(|e| RuntimeError::Admission(e.to_string()))?,
    };
    let links = GatewayPort::new(ends, &shard_cfg);
    let engine = Engine::new(params, server, admission, now, unix_now_s)?;
    let segments = io.max_gso_segments().max(1);
    let core = Core {
        index,
        engine,
        links,
        batch: RecvBatch::for_limits(&limits),
        io,
        steer,
        hosted,
        bells,
        cores_busy,
        term,
        ring_poll: Duration::from_micros(config.gateway.ring_poll_us),
        drain_timeout: Duration::from_millis(config.gateway.drain_timeout_ms),
        ring_reads_max: usize::try_from(config.shards.ring_slots_max).unwrap_or(usize::MAX),
        steer_reads_max: config.gateway.steer_slots_max,
        latency_histograms: config.observability.latency_histograms,
        tx_buf: Vec::with_capacity(segments * SEGMENT_BYTES),
        tx_pending: None,
        tx_blocked: 0,
        recv_transient: 0,
        tx_more: false,
        load: CoreLoad::new(&config.overload, Instant::now()),
        stuck_reported: false,
        step_warnings: WarnLimit::new(STEP_LOG_PERIOD),
        kernel_drops,
        metrics,
    };
    Ok((core, backend, addr))
}

impl Core {
    fn serve(mut self) -> Result<(), RuntimeError> {
        let mut drain_deadline: Option<Instant> = None;
        let mut drained = false;
        loop {
            let now = Instant::now();
            if drain_deadline.is_none() && self.term.load(Ordering::Relaxed) {
                self.engine.begin_drain(now, &mut self.links);
                drain_deadline = Some(now + self.drain_timeout);
                info!(
                    core = self.index,
                    connections = self.engine.connections_open(),
                    "draining"
                );
                // SERVER_DRAINING closes go out before the wait below.
                self.send(now)?;
            }
            if let Some(deadline) = drain_deadline {
                if !drained && self.engine.connections_open() == 0 {
                    drained = true;
                    self.cores_busy.fetch_sub(1, Ordering::AcqRel);
                }
                if drained
                    && (self.hosted.is_empty() || self.cores_busy.load(Ordering::Acquire) == 0)
                {
                    break;
                }
                if now >= deadline {
                    warn!(
                        core = self.index,
                        connections = self.engine.connections_open(),
                        "drain timeout: closing with connections still open"
                    );
                    break;
                }
            }
            self.turn(drain_deadline)?;
        }
        if !drained {
            self.cores_busy.fetch_sub(1, Ordering::AcqRel);
        }
        let _ = self.io.flush();
        self.report();
        Ok(())
    }

    fn turn(&mut self, drain_deadline: Option<Instant>) -> Result<(), RuntimeError> {
        let started = Instant::now();
        let now = started;
        let mut wait = self.ring_poll;
        // One look at the engine's timer heap per turn: timers set while
        // this turn's packets are handled are in the future, and the next
        // turn sees them.
        let next_timeout = self.engine.next_timeout();
        if let Some(t) = next_timeout {
            wait = wait.min(t.saturating_duration_since(now));
        }
        if let Some(d) = drain_deadline {
            wait = wait.min(d.saturating_duration_since(now));
        }
        for h in &self.hosted {
            wait = wait.min(h.next_tick().saturating_duration_since(now));
        }
        if self.tx_more {
            wait = Duration::ZERO;
        }
        // Announce the sleep, then look once more (lanegate_common::wake):
        // an entry pushed before the announcement is seen here, one pushed
        // after it rings the bell and ends the wait.
        let sleeping = wait > Duration::ZERO;
        if sleeping {
            for bell in &self.bells {
                bell.sleep_begin();
            }
            if self.has_input() {
                wait = Duration::ZERO;
            }
        }
        let received = self.io.recv_batch(&mut self.batch, Some(wait));
        if sleeping {
            for bell in &self.bells {
                bell.sleep_end();
            }
        }
        if let Err(e) = received {
            if !is_transient(&e) {
                return Err(self.io_error("receive", &e));
            }
            // A signal or a queued ICMP error: nothing was received.
            self.recv_transient += 1;
            debug!(core = self.index, error = %e, "receive interrupted");
        }

        let now = Instant::now();
        // The latency histograms start at the kernel's receive time: one
        // wall-clock read per turn turns each datagram's timestamp into an
        // age (`received_at`).
        let wall = self.latency_histograms.then(SystemTime::now);
        let Self {
            engine,
            links,
            batch,
            steer,
            ..
        } = self;
        links.set_time(now);
        for d in batch.iter() {
            let ecn = d.ecn.and_then(to_quinn_ecn);
            let at = received_at(now, wall, d.received);
            for packet in d.segments() {
                match steer.owner_elsewhere(packet) {
                    Some(owner) => steer.send(owner, d.remote, d.local_ip, d.ecn, at, packet),
                    None => {
                        engine.handle_datagram_at(now, at, d.remote, d.local_ip, ecn, packet, links)
                    }
                }
            }
        }
        steer.drain(self.steer_reads_max, |p| {
            engine.handle_datagram_at(
                now,
                p.received_at,
                p.remote,
                p.local_ip,
                p.ecn.and_then(to_quinn_ecn),
                p.data(),
                links,
            );
        });

        // Wake the shards and cores this turn's packets went to before
        // running the hosted shards: they work meanwhile.
        self.steer.notify();
        self.links.notify();
        for h in &mut self.hosted {
            // A failed-over shard is not reused, even if its game returns.
            if !self.links.is_fenced(h.id()) {
                h.run(now);
            }
        }

        // One atomic load unless the watchdog failed a shard over: then
        // its players here move before its replies are read (and dropped).
        while let Some(shard) = self.links.lost_shard() {
            self.engine.handle_shard_lost(now, shard, &mut self.links);
        }
        self.engine
            .poll_shards(now, &mut self.links, self.ring_reads_max);

        if next_timeout.is_some_and(|t| t <= now) {
            self.engine.handle_timeouts(now, &mut self.links);
        }
        // Leaves from timeouts.
        self.links.notify();
        if self.metrics.due(now) {
            self.publish(now);
        }
        let sent = self.send(now);
        // How late this turn woke against the wake-up it asked for (zero
        // when packets woke it early), and how long it worked.
        let done = Instant::now();
        let lag = now.saturating_duration_since(started + wait);
        self.load.turn(now, lag, done);
        if self.load.due(done) {
            self.sample_load(done);
        }
        sent
    }

    /// Gives the degradation ladder its sample and applies its step.
    fn sample_load(&mut self, now: Instant) {
        let fill = self.links.ring_fill_percent();
        let handshakes = self.engine.counters().handshakes;
        let cpu = lanegate_udp::cpu::thread_cpu_time();
        // The backend's own count where it has one (io_uring), else the
        // kernel table's as the shard load thread last read it.
        let kernel_drops = self
            .io
            .kernel_drops()
            .or_else(|| self.kernel_drops.get(self.index));
        let sample = CoreSample {
            cpu,
            ring_fill_percent: fill,
            handshakes,
            kernel_drops,
        };
        if let Some(step) = self.load.sample(now, sample) {
            self.stuck_reported = false;
            // A ladder that steps up and down says so once per period; the
            // steps are all in `lanegate_overload_transitions_total`.
            if let Some(suppressed) = self.step_warnings.allow(now) {
                if step.to > step.from {
                    warn!(core = self.index, suppressed, "overload: {step}");
                } else {
                    info!(core = self.index, suppressed, "overload: {step}");
                }
            }
            self.links.set_shedding(Shedding::for_core(step.to));
        }
        if let Some(held) = self.load.stuck(now)
            && !self.stuck_reported
        {
            self.stuck_reported = true;
            warn!(
                core = self.index,
                level = %self.load.level(),
                held_s = held.as_secs(),
                "overload: the level cannot be left; add capacity or drain this host"
            );
        }
    }

    /// Whether a ring into this core (or into a shard it hosts) holds
    /// entries, i.e. whether the next wait must not sleep.
    fn has_input(&mut self) -> bool {
        self.steer.has_input()
            || self.hosted.iter().any(HostedShard::has_input)
            || self.links.has_input()
    }

    /// Sends what the engine has, until it has nothing or the backend is
    /// full (the rest waits for the next turn).
    fn send(&mut self, now: Instant) -> Result<(), RuntimeError> {
        let segments = self.io.max_gso_segments().max(1);
        self.tx_more = false;
        for _ in 0..=TRANSMITS_PER_TURN_MAX {
            if let Some(meta) = self.tx_pending {
                let contents = &self.tx_buf[..meta.size.min(self.tx_buf.len())];
                let transmit = Transmit {
                    destination: meta.destination,
                    ecn: meta.ecn,
                    contents,
                    segment_size: meta.segment_size,
                    src_ip: meta.src_ip,
                };
                let taken = self
                    .io
                    .send_batch(std::slice::from_ref(&transmit))
                    .map_err(|e| self.io_error("send", &e))?;
                if taken == 0 {
                    self.tx_blocked += 1;
                    return Ok(());
                }
                self.tx_pending = None;
            }
            let Some(t) = self.engine.poll_transmit(now, segments, &mut self.tx_buf) else {
                return Ok(());
            };
            self.tx_pending = Some(TxMeta {
                destination: t.destination,
                ecn: t.ecn.map(from_quinn_ecn),
                size: t.size,
                segment_size: t.segment_size.filter(|&s| s < t.size),
                src_ip: t.src_ip,
            });
        }
        // The cap was reached with a transmit taken from the engine.
        self.tx_more = true;
        Ok(())
    }

    fn io_error(&self, what: &str, e: &std::io::Error) -> RuntimeError {
        RuntimeError::Core {
            core: self.index,
            message: format!(
                "{what} failed on the {} backend: {e}",
                self.io.kind().name()
            ),
        }
    }

    fn report(&mut self) {
        let lost = self.links.lost();
        let c = self.engine.counters();
        let s = self.steer.counters;
        info!(
            core = self.index,
            udp_in = c.udp_in,
            sessions_opened = c.sessions_opened,
            messages_to_shard = c.messages_to_shard,
            datagrams_out = c.datagrams_out,
            stream_messages_out = c.stream_messages_out,
            tickets_bad = c.tickets_bad,
            tickets_expired = c.tickets_expired,
            refused = c.refused,
            steered_out = s.out,
            steered_in = s.r#in,
            steer_dropped = s.full + s.oversize,
            ring_lost = ?lost,
            tx_blocked = self.tx_blocked,
            recv_transient = self.recv_transient,
            "gateway core stopped"
        );
        debug!(core = self.index, counters = ?c, "engine counters");
        self.publish(Instant::now());
    }

    /// Copies the counters into the metrics slot (off the packet path:
    /// every `metrics::PUBLISH_EVERY`, and once more at the end).
    fn publish(&mut self, now: Instant) {
        self.metrics.publish(&CoreSnapshot {
            at: now,
            engine: *self.engine.counters(),
            steer: self.steer.counters,
            link_drops: *self.links.drops(),
            latency: *self.links.gateway_latency(),
            tx_blocked: self.tx_blocked,
            recv_transient: self.recv_transient,
            backend: self.io.kind(),
            overload: OverloadReading {
                level: self.load.level().number(),
                transitions: self.load.transitions(),
                stuck: self.stuck_reported,
            },
        });
    }
}

/// Receive errors that say nothing about the socket's health: a signal
/// interrupted the wait, nothing was ready, or an ICMP error from an earlier
/// send surfaced (a peer that went away). The loop goes on after them.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::Interrupted | K::WouldBlock | K::ConnectionRefused | K::ConnectionReset
    )
}

/// Least time between two logged ladder steps of one core or shard.
pub(super) const STEP_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Longest a kernel timestamp may lie in the past and still be believed:
/// past it the wall clock stepped (NTP, an operator), not the datagram.
const RECEIVED_AGE_MAX: Duration = Duration::from_secs(10);

/// When a datagram was received, on the loop's clock: the turn's `now`
/// less its age by the kernel's timestamp (`received`, realtime) against
/// the turn's wall-clock reading (`wall`); `now` without either, or when
/// the two clocks disagree.
fn received_at(now: Instant, wall: Option<SystemTime>, received: Option<Duration>) -> Instant {
    let age = wall
        .zip(received)
        .and_then(|(wall, ts)| {
            wall.duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .checked_sub(ts)
        })
        .filter(|age| *age <= RECEIVED_AGE_MAX);
    age.and_then(|age| now.checked_sub(age)).unwrap_or(now)
}

fn to_quinn_ecn(ecn: Ecn) -> Option<EcnCodepoint> {
    EcnCodepoint::from_bits(ecn.bits())
}

fn from_quinn_ecn(ecn: EcnCodepoint) -> Ecn {
    match ecn {
        EcnCodepoint::Ect0 => Ecn::Ect0,
        EcnCodepoint::Ect1 => Ecn::Ect1,
        EcnCodepoint::Ce => Ecn::Ce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_and_peer_errors_do_not_stop_a_core() {
        use std::io::{Error, ErrorKind};
        assert!(is_transient(&Error::from(ErrorKind::Interrupted)));
        assert!(is_transient(&Error::from(ErrorKind::ConnectionRefused)));
        assert!(!is_transient(&Error::from(ErrorKind::InvalidInput)));
    }

    #[test]
    fn a_kernel_timestamp_becomes_an_age_on_the_loop_clock() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let since = wall.duration_since(UNIX_EPOCH).unwrap();
        let ms = Duration::from_millis;
        assert_eq!(
            received_at(now, Some(wall), Some(since - ms(3))),
            now - ms(3)
        );
        // No timestamp, no wall reading, a future stamp or one from before
        // a clock step: the turn's own time.
        assert_eq!(received_at(now, Some(wall), None), now);
        assert_eq!(received_at(now, None, Some(since)), now);
        assert_eq!(received_at(now, Some(wall), Some(since + ms(5))), now);
        assert_eq!(received_at(now, Some(wall), Some(since - ms(60_000))), now);
    }

    #[test]
    fn ecn_codepoints_convert_both_ways() {
        for ecn in [Ecn::Ect0, Ecn::Ect1, Ecn::Ce] {
            let q = to_quinn_ecn(ecn).unwrap();
            assert_eq!(from_quinn_ecn(q), ecn);
        }
    }
}
