//! What a gateway runs: the validated configuration, resolved.
//!
//! [`Plan::new`] resolves everything start-up needs (cores, lane table,
//! ticket keys) so that a bad key file fails before any socket opens, and
//! its `Display` is the summary `lanegate serve` prints before it serves.

use std::fmt;

use lanegate_common::config::{Config, CorePlan, HostInfo};
use lanegate_common::lanes::{Lane, LaneTable};
use lanegate_common::ticket::KeySet;

use crate::load::{self, LoadError};

/// What a gateway runs: the validated configuration, resolved.
pub struct Plan {
    /// The configuration, validated for this host.
    pub config: Config,
    /// Cores of each tier, `"auto"` resolved.
    pub cores: CorePlan,
    /// The classification table built from `[lanes]`.
    pub lanes: LaneTable,
    /// Ticket verification keys, read from their files (or the dev key).
    pub keys: KeySet,
}

impl Plan {
    /// Resolves `config`, which must have passed `Config::validate` for
    /// `host`, and reads the ticket key files.
    pub fn new(config: Config, host: &HostInfo) -> Result<Plan, LoadError> {
        let keys = load::ticket_keys(&config.tickets)?;
        let lanes = config
            .lanes
            .lane_table()
            .expect("Config::validate builds the lane table");
        Ok(Plan {
            cores: config.core_plan(host),
            lanes,
            keys,
            config,
        })
    }

    /// Whether tickets are verified with the public dev key.
    pub fn uses_dev_key(&self) -> bool {
        self.config.tickets.keys.is_empty()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let (g, s, t) = (&c.gateway, &c.shards, &c.tickets);
        writeln!(f, "lanegate {} serves:", env!("CARGO_PKG_VERSION"))?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, value: fmt::Arguments<'_>| {
            writeln!(f, "  {name:<15}  {value}")
        };
        row(f, "listen", format_args!("{} (UDP, QUIC)", g.listen))?;
        row(f, "io backend", format_args!("{}", io_backend_name(g)))?;
        let (gw, sh) = (&self.cores.gateway, &self.cores.shards);
        row(
            f,
            "gateway cores",
            format_args!("{} ({})", list(gw), count(gw.len(), "thread")),
        )?;
        row(
            f,
            "shard cores",
            format_args!("{} ({})", list(sh), count(sh.len(), "shard")),
        )?;
        row(
            f,
            "game",
            format_args!(
                "{} at {} Hz, tick budget {} us, messages every {} us between ticks, watchdog {} ms, failover {}",
                s.game.name(),
                s.tick_rate_hz,
                s.tick_budget_us,
                s.message_pass_us,
                s.stall_after_ms,
                match s.stall_failover_ms {
                    0 => "off".to_owned(),
                    ms => format!("{ms} ms"),
                }
            ),
        )?;
        row(f, "rings", format_args!("{} slots each", s.ring_slots_max))?;
        row(
            f,
            "connections",
            format_args!(
                "{} max; hello timeout {} ms, idle timeout {} ms, drain {} ms",
                g.connections_max, g.hello_timeout_ms, g.idle_timeout_ms, g.drain_timeout_ms
            ),
        )?;
        row(
            f,
            "handshakes",
            format_args!(
                "{}/s per source IP, burst {}",
                g.handshakes_per_ip_per_s, g.handshake_burst
            ),
        )?;
        row(
            f,
            "messages",
            format_args!(
                "datagram <= {} bytes, stream <= {} bytes",
                g.datagram_message_bytes_max, g.stream_message_bytes_max
            ),
        )?;
        row(
            f,
            "socket buffers",
            format_args!(
                "recv {} bytes, send {} bytes",
                g.socket_recv_buffer_bytes, g.socket_send_buffer_bytes
            ),
        )?;
        match (&g.cert_file, &g.key_file) {
            (Some(cert), Some(key)) => row(
                f,
                "tls",
                format_args!("{} with key {}", cert.display(), key.display()),
            )?,
            _ => row(
                f,
                "tls",
                format_args!("self-signed certificate, made at start"),
            )?,
        }
        let ids: Vec<String> = self.keys.key_ids().map(|id| id.to_string()).collect();
        let dev = if self.uses_dev_key() {
            " (DEV KEY: public secret, development only)"
        } else {
            ""
        };
        row(
            f,
            "ticket keys",
            format_args!(
                "ids {}{dev}; clock skew {} s, ttl max {} s",
                ids.join(", "),
                t.clock_skew_s,
                t.ttl_max_s
            ),
        )?;
        row(
            f,
            "admission",
            format_args!(
                "close with ABUSE after more than {} drops in {} ms",
                c.admission.abuse_drops_max, c.admission.abuse_window_ms
            ),
        )?;
        match c.observability.metrics_listen {
            // Port 0 is picked when the listener binds, after this plan is
            // printed; the `metrics ADDR` line on stdout then names it.
            Some(addr) if addr.port() == 0 => row(
                f,
                "metrics",
                format_args!(
                    "http://{}:<free port>/metrics (see the `metrics` line)",
                    addr.ip()
                ),
            )?,
            Some(addr) => row(f, "metrics", format_args!("http://{addr}/metrics"))?,
            None => row(f, "metrics", format_args!("off"))?,
        }
        row(
            f,
            "log format",
            format_args!("{}", c.observability.log_format.name()),
        )?;
        row(
            f,
            "lanes",
            format_args!(
                "game types no rule covers go to {}",
                self.lanes.default_lane()
            ),
        )?;
        writeln!(
            f,
            "    {:<9} {:<28} {:<18} budget/tick",
            "lane", "types", "limit per conn"
        )?;
        for lane in Lane::ALL {
            let mut ranges: Vec<String> = self
                .lanes
                .rules()
                .iter()
                .filter(|r| r.lane == lane)
                .map(|r| r.types.to_string())
                .collect();
            if lane == self.lanes.default_lane() {
                ranges.push("unmapped".to_owned());
            }
            if ranges.is_empty() {
                ranges.push("-".to_owned());
            }
            let limit = c.lanes.limits.get(lane);
            let limit = format!("{}/s burst {}", limit.rate_per_s, limit.burst);
            writeln!(
                f,
                "    {:<9} {:<28} {:<18} {}",
                lane.name(),
                ranges.join(", "),
                limit,
                s.lane_budget_per_tick.get(lane)
            )?;
        }
        Ok(())
    }
}

fn io_backend_name(g: &lanegate_common::config::GatewayConfig) -> &'static str {
    use lanegate_common::config::IoBackend;
    match g.io_backend {
        IoBackend::Auto => "auto (io_uring if the kernel offers it, else portable)",
        IoBackend::IoUring => "io_uring",
        IoBackend::Portable => "portable",
    }
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn list(cores: &[usize]) -> String {
    let names: Vec<String> = cores.iter().map(usize::to_string).collect();
    names.join(", ")
}
