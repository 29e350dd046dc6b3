//! The arena: players move in a square 2D zone.
//!
//! Traffic shape (`docs/shard.md`, "Arena", has the byte layouts):
//!
//! | type     | lane     | direction        | transport | rate                         |
//! |----------|----------|------------------|-----------|------------------------------|
//! | `0x1000` | critical | client → shard   | datagram  | input, up to once per tick   |
//! | `0x2000` | high     | shard → client   | datagram  | positions, once per tick     |
//! | `0x3000` | normal   | both             | stream    | chat, rare                   |
//! | `0x4000` | bulk     | client → shard   | datagram  | telemetry, about once a second |
//!
//! A player's input sets the direction they move in until the next input.
//! Every tick each player moves, then gets a positions message listing
//! themselves first and then the other players within `interest_radius`,
//! nearest first, at most `positions_per_message_max - 1` of them: interest
//! management, so a crowded zone does not send everyone everything.

use std::collections::BTreeMap;

use lanegate_common::degradation::Level;
use lanegate_common::ids::{PlayerId, ZoneId};

use crate::game::{Game, Incoming, Msg, Outbox};

/// Input: `seq: u32, dx: i8, dy: i8` (6 bytes). Client → shard, critical.
pub const INPUT: u16 = 0x1000;
/// Positions: see [`Positions`]. Shard → client, high.
pub const POSITIONS: u16 = 0x2000;
/// Chat: UTF-8 text client → shard; `from: u64` + text shard → clients.
pub const CHAT: u16 = 0x3000;
/// Telemetry: `client_time_ms: u32, rtt_ms: u16, fps: u16` (8 bytes).
pub const TELEMETRY: u16 = 0x4000;

/// Longest chat text accepted, in bytes.
pub const CHAT_TEXT_MAX: usize = 200;
/// Bytes per entry of a positions message.
pub const POSITION_ENTRY_BYTES: usize = 16;
/// Bytes of a positions message's header.
pub const POSITIONS_HEADER_BYTES: usize = 10;

/// Arena rules and limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaConfig {
    /// Side of the square zone, in world units; positions are `0..size`.
    pub size_units: i32,
    /// Speed at full input (`dx` or `dy` of ±127), in units per second.
    pub speed_units_per_s: i32,
    /// Players farther than this are not in each other's positions.
    pub interest_radius_units: i32,
    /// Entries per positions message, the recipient included. The default,
    /// 64, keeps the message within one datagram (10 + 64 × 16 = 1034
    /// bytes of the 1098 a datagram payload may have by default, the
    /// `gateway.datagram_message_bytes_max` of 1100 less the type).
    pub positions_per_message_max: usize,
}

impl Default for ArenaConfig {
    fn default() -> Self {
        Self {
            size_units: 10_000,
            speed_units_per_s: 400,
            interest_radius_units: 1_500,
            positions_per_message_max: 64,
        }
    }
}

/// A decoded input message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input {
    /// The client's input sequence number, acknowledged in positions.
    pub seq: u32,
    /// Horizontal direction, −127 (left) to 127 (right).
    pub dx: i8,
    /// Vertical direction, −127 (down) to 127 (up).
    pub dy: i8,
}

impl Input {
    /// Wire size.
    pub const BYTES: usize = 6;

    /// The payload bytes.
    pub fn encode(&self) -> [u8; Self::BYTES] {
        let mut b = [0; Self::BYTES];
        b[..4].copy_from_slice(&self.seq.to_be_bytes());
        b[4] = self.dx.to_be_bytes()[0];
        b[5] = self.dy.to_be_bytes()[0];
        b
    }

    /// Parses a payload; `None` unless it is exactly [`Input::BYTES`] long.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::BYTES] = b.try_into().ok()?;
        Some(Self {
            seq: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            dx: i8::from_be_bytes([b[4]]),
            dy: i8::from_be_bytes([b[5]]),
        })
    }
}

/// One entry of a positions message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The player.
    pub player: PlayerId,
    /// Horizontal position in units.
    pub x: i32,
    /// Vertical position in units.
    pub y: i32,
}

/// A decoded positions message: `tick: u32, ack_seq: u32, count: u16`, then
/// `count` × (`player: u64, x: i32, y: i32`). The first entry is the
/// recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Positions {
    /// The shard tick it describes (low 32 bits).
    pub tick: u32,
    /// The last input `seq` applied for the recipient.
    pub ack_seq: u32,
    /// The recipient, then players in range, nearest first.
    pub entries: Vec<Position>,
}

impl Positions {
    /// Parses a payload; `None` if its length does not match its count.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let (head, rest) = b.split_first_chunk::<POSITIONS_HEADER_BYTES>()?;
        let tick = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let ack_seq = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        let count = usize::from(u16::from_be_bytes([head[8], head[9]]));
        if rest.len() != count * POSITION_ENTRY_BYTES {
            return None;
        }
        let entries = rest
            .chunks_exact(POSITION_ENTRY_BYTES)
            .map(|e| Position {
                player: PlayerId(u64::from_be_bytes([
                    e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7],
                ])),
                x: i32::from_be_bytes([e[8], e[9], e[10], e[11]]),
                y: i32::from_be_bytes([e[12], e[13], e[14], e[15]]),
            })
            .collect();
        Some(Self {
            tick,
            ack_seq,
            entries,
        })
    }
}

/// A decoded telemetry message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Telemetry {
    /// The client's clock, in milliseconds.
    pub client_time_ms: u32,
    /// The client's smoothed round-trip time, in milliseconds.
    pub rtt_ms: u16,
    /// Frames per second.
    pub fps: u16,
}

impl Telemetry {
    /// Wire size.
    pub const BYTES: usize = 8;

    /// The payload bytes.
    pub fn encode(&self) -> [u8; Self::BYTES] {
        let mut b = [0; Self::BYTES];
        b[..4].copy_from_slice(&self.client_time_ms.to_be_bytes());
        b[4..6].copy_from_slice(&self.rtt_ms.to_be_bytes());
        b[6..].copy_from_slice(&self.fps.to_be_bytes());
        b
    }

    /// Parses a payload; `None` unless it is exactly [`Telemetry::BYTES`] long.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::BYTES] = b.try_into().ok()?;
        Some(Self {
            client_time_ms: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            rtt_ms: u16::from_be_bytes([b[4], b[5]]),
            fps: u16::from_be_bytes([b[6], b[7]]),
        })
    }
}

/// What the arena counted, across its zones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    /// Inputs applied.
    pub inputs: u64,
    /// Chat lines relayed.
    pub chats: u64,
    /// Telemetry reports received.
    pub telemetry: u64,
    /// Sum of reported round-trip times, in milliseconds.
    pub rtt_sum_ms: u64,
    /// Messages that did not parse, or of unknown type.
    pub malformed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Avatar {
    x: i32,
    y: i32,
    dx: i8,
    dy: i8,
    ack_seq: u32,
}

/// The arena game. See the module docs for its traffic.
#[derive(Debug, Default)]
pub struct Arena {
    cfg: ArenaConfig,
    zones: BTreeMap<ZoneId, BTreeMap<PlayerId, Avatar>>,
    stats: ArenaStats,
    scratch: Scratch,
}

/// Buffers reused from tick to tick, so a tick allocates nothing once warm.
#[derive(Debug, Default)]
struct Scratch {
    avatars: Vec<(PlayerId, i32, i32, u32)>,
    cells: Vec<(u64, usize)>,
    near: Vec<(i64, usize)>,
    msg: Vec<u8>,
}

impl Arena {
    /// An arena with `cfg`.
    pub fn new(cfg: ArenaConfig) -> Self {
        Self {
            cfg,
            ..Self::default()
        }
    }

    /// What it counted.
    pub fn stats(&self) -> ArenaStats {
        self.stats
    }

    /// A player's position, if they are in `zone`.
    pub fn position(&self, zone: ZoneId, player: PlayerId) -> Option<(i32, i32)> {
        let a = self.zones.get(&zone)?.get(&player)?;
        Some((a.x, a.y))
    }

    /// Puts a player at a position (for tests and scripted scenes).
    pub fn teleport(&mut self, zone: ZoneId, player: PlayerId, x: i32, y: i32) {
        if let Some(a) = self.zones.get_mut(&zone).and_then(|z| z.get_mut(&player)) {
            a.x = x.clamp(0, self.cfg.size_units - 1);
            a.y = y.clamp(0, self.cfg.size_units - 1);
        }
    }

    fn spawn_point(&self, player: PlayerId) -> (i32, i32) {
        // A fixed scramble of the id: the same player spawns at the same
        // place on every run.
        let h = player.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let size = u64::try_from(self.cfg.size_units.max(1)).unwrap_or(1);
        let x = i32::try_from((h >> 32) % size).unwrap_or(0);
        let y = i32::try_from((h & 0xffff_ffff) % size).unwrap_or(0);
        (x, y)
    }

    fn step(&mut self, dt_us: i64) {
        let size = self.cfg.size_units;
        let speed = i64::from(self.cfg.speed_units_per_s);
        for zone in self.zones.values_mut() {
            for a in zone.values_mut() {
                let mv = |d: i8| i64::from(d) * speed * dt_us / (127 * 1_000_000);
                let nx = (i64::from(a.x) + mv(a.dx)).clamp(0, i64::from(size - 1));
                let ny = (i64::from(a.y) + mv(a.dy)).clamp(0, i64::from(size - 1));
                a.x = i32::try_from(nx).unwrap_or(a.x);
                a.y = i32::try_from(ny).unwrap_or(a.y);
            }
        }
    }

    fn send_positions(&mut self, out: &mut Outbox<'_>, players: &BTreeMap<PlayerId, Avatar>) {
        let s = &mut self.scratch;
        let r = i64::from(self.cfg.interest_radius_units.max(1));
        s.avatars.clear();
        s.avatars
            .extend(players.iter().map(|(&p, a)| (p, a.x, a.y, a.ack_seq)));
        // A grid of radius-sized cells: everyone within the radius is in
        // the 3 × 3 cells around a player.
        let cell_of = |x: i32, y: i32| -> (i64, i64) { (i64::from(x) / r, i64::from(y) / r) };
        let key = |cx: i64, cy: i64| -> u64 {
            // Cells are non-negative and below 2^31: pack them.
            (u64::try_from(cx).unwrap_or(0) << 32) | u64::try_from(cy).unwrap_or(0)
        };
        s.cells.clear();
        s.cells
            .extend(s.avatars.iter().enumerate().map(|(i, &(_, x, y, _))| {
                let (cx, cy) = cell_of(x, y);
                (key(cx, cy), i)
            }));
        s.cells.sort_unstable();
        let tick = u32::try_from(out.tick() & 0xffff_ffff).unwrap_or(0);
        let others_max = self.cfg.positions_per_message_max.saturating_sub(1);
        for i in 0..s.avatars.len() {
            let (me, x, y, ack) = s.avatars[i];
            let (cx, cy) = cell_of(x, y);
            s.near.clear();
            for nx in cx - 1..=cx + 1 {
                for ny in cy - 1..=cy + 1 {
                    if nx < 0 || ny < 0 {
                        continue;
                    }
                    let k = key(nx, ny);
                    let start = s.cells.partition_point(|&(c, _)| c < k);
                    for &(c, j) in &s.cells[start..] {
                        if c != k {
                            break;
                        }
                        if j == i {
                            continue;
                        }
                        let (_, ox, oy, _) = s.avatars[j];
                        let ddx = i64::from(ox) - i64::from(x);
                        let ddy = i64::from(oy) - i64::from(y);
                        let d2 = ddx * ddx + ddy * ddy;
                        if d2 <= r * r {
                            s.near.push((d2, j));
                        }
                    }
                }
            }
            s.near.sort_unstable();
            s.near.truncate(others_max);
            s.msg.clear();
            s.msg.extend_from_slice(&tick.to_be_bytes());
            s.msg.extend_from_slice(&ack.to_be_bytes());
            let count = u16::try_from(s.near.len() + 1).unwrap_or(u16::MAX);
            s.msg.extend_from_slice(&count.to_be_bytes());
            for j in std::iter::once(i).chain(s.near.iter().map(|&(_, j)| j)) {
                let (p, px, py, _) = s.avatars[j];
                s.msg.extend_from_slice(&p.0.to_be_bytes());
                s.msg.extend_from_slice(&px.to_be_bytes());
                s.msg.extend_from_slice(&py.to_be_bytes());
            }
            // Refusals are counted by the runtime; positions are resent
            // next tick anyway.
            let _ = out.send(me, Msg::datagram(POSITIONS, &s.msg));
        }
    }
}

impl Game for Arena {
    fn on_join(&mut self, _out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        let (x, y) = self.spawn_point(player);
        self.zones.entry(zone).or_default().insert(
            player,
            Avatar {
                x,
                y,
                dx: 0,
                dy: 0,
                ack_seq: 0,
            },
        );
    }

    fn on_leave(&mut self, _out: &mut Outbox<'_>, zone: ZoneId, player: PlayerId) {
        if let Some(z) = self.zones.get_mut(&zone) {
            z.remove(&player);
            if z.is_empty() {
                self.zones.remove(&zone);
            }
        }
    }

    fn on_message(&mut self, out: &mut Outbox<'_>, msg: Incoming<'_>) {
        match msg.ty {
            INPUT => {
                let avatar = self
                    .zones
                    .get_mut(&msg.zone)
                    .and_then(|z| z.get_mut(&msg.player));
                match (Input::decode(msg.payload), avatar) {
                    (Some(input), Some(a)) => {
                        a.dx = input.dx;
                        a.dy = input.dy;
                        a.ack_seq = input.seq;
                        self.stats.inputs += 1;
                    }
                    _ => self.stats.malformed += 1,
                }
            }
            CHAT => {
                let text = msg.payload;
                if text.is_empty()
                    || text.len() > CHAT_TEXT_MAX
                    || std::str::from_utf8(text).is_err()
                {
                    self.stats.malformed += 1;
                    return;
                }
                let s = &mut self.scratch;
                s.msg.clear();
                s.msg.extend_from_slice(&msg.player.0.to_be_bytes());
                s.msg.extend_from_slice(text);
                self.stats.chats += 1;
                let _ = out.broadcast(msg.zone, Msg::stream(CHAT, &s.msg));
            }
            TELEMETRY => match Telemetry::decode(msg.payload) {
                Some(t) => {
                    self.stats.telemetry += 1;
                    self.stats.rtt_sum_ms += u64::from(t.rtt_ms);
                }
                None => self.stats.malformed += 1,
            },
            _ => self.stats.malformed += 1,
        }
    }

    fn on_tick(&mut self, out: &mut Outbox<'_>) {
        let dt_us = i64::try_from(out.tick_interval().as_micros()).unwrap_or(0);
        self.step(dt_us);
        // A loaded shard (level 3, thin `high`): positions every other
        // tick. Movement is still simulated every tick; clients
        // interpolate across the gap.
        if out.level() >= Level::ThinHigh && out.tick() % 2 == 1 {
            return;
        }
        // Taken out and put back so the scratch buffers can be borrowed
        // alongside; nothing is allocated.
        let zones = std::mem::take(&mut self.zones);
        for players in zones.values() {
            self.send_positions(out, players);
        }
        self.zones = zones;
    }

    /// `count: u32`, then per player `player: u64, x: i32, y: i32, dx: i8,
    /// dy: i8, ack_seq: u32` (22 bytes).
    fn export_zone(&mut self, zone: ZoneId) -> Vec<u8> {
        let Some(players) = self.zones.remove(&zone) else {
            return Vec::new();
        };
        let mut b = Vec::with_capacity(4 + players.len() * 22);
        let count = u32::try_from(players.len()).unwrap_or(u32::MAX);
        b.extend_from_slice(&count.to_be_bytes());
        for (p, a) in players {
            b.extend_from_slice(&p.0.to_be_bytes());
            b.extend_from_slice(&a.x.to_be_bytes());
            b.extend_from_slice(&a.y.to_be_bytes());
            b.push(a.dx.to_be_bytes()[0]);
            b.push(a.dy.to_be_bytes()[0]);
            b.extend_from_slice(&a.ack_seq.to_be_bytes());
        }
        b
    }

    fn import_zone(
        &mut self,
        out: &mut Outbox<'_>,
        zone: ZoneId,
        state: &[u8],
        players: &[PlayerId],
    ) {
        let mut avatars = BTreeMap::new();
        if let Some((_, rest)) = state.split_first_chunk::<4>() {
            for e in rest.chunks_exact(22) {
                let p = PlayerId(u64::from_be_bytes([
                    e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7],
                ]));
                avatars.insert(
                    p,
                    Avatar {
                        x: i32::from_be_bytes([e[8], e[9], e[10], e[11]]),
                        y: i32::from_be_bytes([e[12], e[13], e[14], e[15]]),
                        dx: i8::from_be_bytes([e[16]]),
                        dy: i8::from_be_bytes([e[17]]),
                        ack_seq: u32::from_be_bytes([e[18], e[19], e[20], e[21]]),
                    },
                );
            }
        }
        self.zones.insert(zone, avatars);
        // Anyone the state did not know (it should know them all) joins anew.
        for &p in players {
            if self.position(zone, p).is_none() {
                self.on_join(out, zone, p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_round_trip_and_example() {
        let i = Input {
            seq: 7,
            dx: -127,
            dy: 64,
        };
        assert_eq!(i.encode(), [0x00, 0x00, 0x00, 0x07, 0x81, 0x40]);
        assert_eq!(Input::decode(&i.encode()), Some(i));
        assert_eq!(Input::decode(&[0; 5]), None);
        assert_eq!(Input::decode(&[0; 7]), None);
    }

    #[test]
    fn telemetry_round_trip_and_example() {
        let t = Telemetry {
            client_time_ms: 1000,
            rtt_ms: 42,
            fps: 60,
        };
        assert_eq!(t.encode(), [0x00, 0x00, 0x03, 0xe8, 0x00, 0x2a, 0x00, 0x3c]);
        assert_eq!(Telemetry::decode(&t.encode()), Some(t));
    }

    #[test]
    fn positions_example_decodes() {
        let b = [
            0x00, 0x00, 0x00, 0x05, // tick 5
            0x00, 0x00, 0x00, 0x07, // ack 7
            0x00, 0x01, // count 1
            0, 0, 0, 0, 0, 0, 0, 0x2a, // player 42
            0x00, 0x00, 0x01, 0xf4, // x 500
            0x00, 0x00, 0x03, 0xe8, // y 1000
        ];
        assert_eq!(
            Positions::decode(&b),
            Some(Positions {
                tick: 5,
                ack_seq: 7,
                entries: vec![Position {
                    player: PlayerId(42),
                    x: 500,
                    y: 1000
                }]
            })
        );
        assert_eq!(Positions::decode(&b[..b.len() - 1]), None);
    }

    #[test]
    fn default_positions_fit_a_datagram() {
        let cfg = ArenaConfig::default();
        let bytes = POSITIONS_HEADER_BYTES + cfg.positions_per_message_max * POSITION_ENTRY_BYTES;
        let gateway = lanegate_common::config::GatewayConfig::default();
        assert!(bytes <= gateway.datagram_payload_bytes_max());
    }
}
