//! The command line, as clap derive types. Parsing only: each subcommand's
//! behaviour lives in its own module.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Lanegate: an edge gateway for real-time multiplayer games.
///
/// With no subcommand, runs `serve`.
#[derive(Debug, Parser)]
#[command(name = "lanegate", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do; `serve` when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s flags, accepted without the word `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default): print the plan, serve until SIGTERM
    /// or SIGINT, then drain (a second signal exits at once).
    Serve(ServeArgs),
    /// Mint a session ticket and print it on stdout.
    Ticket(TicketArgs),
    /// Measure round-trip time and loss per lane against a running gateway
    /// (diagnostic echo). Exits 0 only if every lane answered.
    Probe(ProbeArgs),
    /// Drive a gateway with a swarm of game-shaped bots (open loop) and
    /// report per-lane round-trip times and loss.
    Bots(BotsArgs),
    /// Print or check configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect this host and say what would hurt the gateway, with fixes.
    /// Exits 1 if any check fails outright.
    Doctor(DoctorArgs),
}

/// Flags of `lanegate doctor`.
#[derive(Debug, Default, Args)]
pub struct DoctorArgs {
    /// Configuration to check the host against (cores, buffer sizes, IO
    /// backend); without it, the embedded defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Flags of `lanegate serve`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file; without it, the embedded defaults
    /// (`lanegate config print-default`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// UDP address to listen on, overriding `gateway.listen`.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// TCP address of the metrics endpoint, or `off`, overriding
    /// `observability.metrics_listen` (port 0 picks a free port; the
    /// `metrics ADDR` line on stdout names it).
    #[arg(long, value_name = "ADDR|off", value_parser = parse_addr_or_off)]
    pub metrics_listen: Option<MetricsListen>,
    /// Log lines on stderr as `text` or `json`, overriding
    /// `observability.log_format`.
    #[arg(long, value_name = "text|json", value_parser = parse_log_format)]
    pub log_format: Option<lanegate_common::config::LogFormat>,
}

fn parse_log_format(text: &str) -> Result<lanegate_common::config::LogFormat, String> {
    use lanegate_common::config::LogFormat;
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not text or json")),
    }
}

/// `--metrics-listen`: an address, or `off` (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsListen(pub Option<SocketAddr>);

fn parse_addr_or_off(text: &str) -> Result<MetricsListen, String> {
    if text == "off" {
        return Ok(MetricsListen(None));
    }
    text.parse()
        .map(|a| MetricsListen(Some(a)))
        .map_err(|_| format!("`{text}` is not an address; write 127.0.0.1:9464 or off"))
}

/// Flags of `lanegate ticket`.
#[derive(Debug, Args)]
pub struct TicketArgs {
    /// The player the ticket admits.
    #[arg(long, value_name = "ID")]
    pub player: u64,
    /// The zone (world, match or room) the ticket admits to.
    #[arg(long, value_name = "ID")]
    pub zone: u32,
    /// How long the ticket is valid, e.g. `90s`, `15m`, `1h`; whole seconds.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// File holding the signing secret (at least 32 bytes, surrounding
    /// whitespace ignored). Without it, the public dev key signs.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Key id to sign as, matching a `[[tickets.keys]]` id of the gateway.
    /// Default 1 with `--secret-file`; the dev key is always id 0.
    #[arg(long, value_name = "N", requires = "secret_file")]
    pub key_id: Option<u32>,
    /// Issue time, Unix seconds; default now.
    #[arg(long, value_name = "UNIX_S")]
    pub now: Option<u64>,
}

/// Flags of `lanegate probe`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("trust").required(true).args(["fingerprint", "insecure"])))]
pub struct ProbeArgs {
    /// The gateway's UDP address, e.g. `127.0.0.1:4433`.
    #[arg(long, value_name = "ADDR")]
    pub server: SocketAddr,
    /// SHA-256 fingerprint of the gateway's certificate, as `lanegate serve`
    /// prints it (`fingerprint ...`); `:` separators optional.
    #[arg(long, value_name = "SHA256")]
    pub fingerprint: Option<String>,
    /// Accept any certificate (development only: anyone on the path can
    /// impersonate the gateway).
    #[arg(long)]
    pub insecure: bool,
    /// Echoes per lane.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub count: u32,
    /// Time between rounds, e.g. `20ms`.
    #[arg(long, value_name = "DURATION", default_value = "20ms", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Session ticket to present; without it one is minted with the public
    /// dev key (accepted only by gateways without `[tickets]` keys).
    #[arg(long, value_name = "TICKET")]
    pub ticket: Option<String>,
    /// Player of the minted dev ticket.
    #[arg(
        long,
        value_name = "ID",
        default_value_t = 1,
        conflicts_with = "ticket"
    )]
    pub player: u64,
    /// Zone of the minted dev ticket.
    #[arg(
        long,
        value_name = "ID",
        default_value_t = 1,
        conflicts_with = "ticket"
    )]
    pub zone: u32,
    /// Server name for TLS (SNI); any name works with a pinned fingerprint.
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    pub server_name: String,
}

/// Flags of `lanegate bots`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("trust").args(["fingerprint", "insecure"])))]
pub struct BotsArgs {
    /// The server's UDP address, e.g. `127.0.0.1:4433`.
    #[arg(long, value_name = "ADDR")]
    pub server: SocketAddr,
    /// SHA-256 fingerprint of the server's certificate, as `lanegate serve`
    /// prints it.
    #[arg(long, value_name = "SHA256")]
    pub fingerprint: Option<String>,
    /// Accept any certificate (development only).
    #[arg(long)]
    pub insecure: bool,
    /// Concurrent bots, each its own QUIC session.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub clients: usize,
    /// How long each bot plays, e.g. `30s`.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Messages per second per bot in each lane, overriding the Arena shape:
    /// `critical=30`, `high=20`, `normal=0.2`, `bulk=1`. Repeatable.
    #[arg(long = "rate", value_name = "LANE=RATE")]
    pub rates: Vec<String>,
    /// An abusive extra load in one lane, per bot, e.g. `bulk=100`.
    #[arg(long, value_name = "LANE=RATE")]
    pub flood_lane: Option<String>,
    /// New sessions per second while ramping up (0: all at once).
    #[arg(long, value_name = "RATE", default_value_t = 50.0)]
    pub connect_rate: f64,
    /// Plain UDP datagrams instead of QUIC, for the `baseline-udp` reflector.
    #[arg(long)]
    pub udp: bool,
    /// Runtime worker threads for the bots.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub threads: usize,
    /// Write every figure as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with per-lane latency plots.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Server name for TLS (SNI).
    #[arg(long, value_name = "NAME", default_value = "localhost")]
    pub server_name: String,
    /// Overload: every lane's rate times FACTOR (1 to 8), e.g. `2` for
    /// twice the mix a gateway was sized for. Needs
    /// `--allow-remote-attack` against a non-loopback server.
    #[arg(long, value_name = "FACTOR", conflicts_with = "attack")]
    pub overload: Option<f64>,
    /// Attack your own gateway instead of playing: `handshake-flood` (QUIC
    /// Initials never answered), `garbage-flood` (random 1-1500-byte
    /// datagrams), `half-open` (`--clients` handshakes that never send
    /// Hello, each held until the gateway closes it), `slow-senders`
    /// (`--clients` sessions that trickle a frame a byte a second) or
    /// `slow-readers` (`--clients` sessions that send and never read); the
    /// slow ones need a gateway on the development ticket key. Runs
    /// `--duration` (at most 10 min).
    #[arg(long, value_name = "ATTACK")]
    pub attack: Option<String>,
    /// Attack rate per second, over all sources: Initials (at most
    /// 50000), datagrams (at most 1000000) or new held (half-open, slow)
    /// connections (at most 5000).
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "attack")]
    pub attack_rate: u32,
    /// Attack source sockets, each its own port (at most 4096).
    #[arg(long, value_name = "N", default_value_t = 200, requires = "attack")]
    pub sources: usize,
    /// Distinct source addresses (127.0.0.1 and up) the sources spread
    /// over, at most 4096; only against an IPv4 loopback server, where the
    /// default is 50 (elsewhere 1).
    #[arg(long, value_name = "N", requires = "attack")]
    pub source_addrs: Option<usize>,
    /// Held attacks (half-open, slow): longest each connection waits for
    /// the gateway to close it (at most 120s).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration, requires = "attack")]
    pub hold_max: Duration,
    /// Allow `--attack` and `--overload` against a server that is not a
    /// loopback address. Attack only hosts you run.
    #[arg(long)]
    pub allow_remote_attack: bool,
}

/// `lanegate config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the complete default configuration, every field commented.
    PrintDefault,
    /// Load and validate FILE for this host: print `ok`, or the broken
    /// field and how to fix it (exit 2; exit 1 if FILE cannot be read).
    Check {
        /// The configuration file.
        file: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn log_format_takes_text_or_json() {
        use lanegate_common::config::LogFormat;
        let cli = Cli::try_parse_from(["lanegate", "--log-format", "json"]).unwrap();
        assert_eq!(cli.serve.log_format, Some(LogFormat::Json));
        let cli = Cli::try_parse_from(["lanegate", "serve", "--log-format", "text"]).unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve");
        };
        assert_eq!(args.log_format, Some(LogFormat::Text));
        assert!(Cli::try_parse_from(["lanegate", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn metrics_listen_takes_an_address_or_off() {
        let cli = Cli::try_parse_from(["lanegate", "--metrics-listen", "off"]).unwrap();
        assert_eq!(cli.serve.metrics_listen, Some(MetricsListen(None)));
        let cli =
            Cli::try_parse_from(["lanegate", "serve", "--metrics-listen", "127.0.0.1:0"]).unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("serve");
        };
        assert_eq!(
            args.metrics_listen,
            Some(MetricsListen(Some("127.0.0.1:0".parse().unwrap())))
        );
        assert!(Cli::try_parse_from(["lanegate", "--metrics-listen", "localhost"]).is_err());
    }

    #[test]
    fn plain_invocation_is_serve() {
        let cli = Cli::try_parse_from(["lanegate", "--listen", "127.0.0.1:1"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen, Some("127.0.0.1:1".parse().unwrap()));
    }

    #[test]
    fn probe_needs_a_way_to_trust_the_server() {
        let base = ["lanegate", "probe", "--server", "127.0.0.1:4433"];
        assert!(Cli::try_parse_from(base).is_err());
        let insecure = [&base[..], &["--insecure"]].concat();
        assert!(Cli::try_parse_from(insecure).is_ok());
        let pinned = [&base[..], &["--fingerprint", "ab:cd"]].concat();
        let cli = Cli::try_parse_from(pinned).unwrap();
        let Some(Command::Probe(args)) = cli.command else {
            panic!("probe parses as probe");
        };
        assert_eq!((args.count, args.player, args.zone), (10, 1, 1));
        assert_eq!(args.interval, Duration::from_millis(20));
    }

    #[test]
    fn attack_flags_need_an_attack_and_exclude_overload() {
        let base = ["lanegate", "bots", "--server", "127.0.0.1:4433"];
        let attack = [&base[..], &["--attack", "garbage-flood", "--sources", "9"]].concat();
        let cli = Cli::try_parse_from(attack).unwrap();
        let Some(Command::Bots(args)) = cli.command else {
            panic!("bots parses as bots");
        };
        assert_eq!((args.sources, args.attack_rate), (9, 1000));
        let orphan = [&base[..], &["--sources", "9"]].concat();
        assert!(Cli::try_parse_from(orphan).is_err());
        let both = [&base[..], &["--attack", "half-open", "--overload", "2"]].concat();
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn key_id_needs_a_secret_file() {
        let args = [
            "lanegate", "ticket", "--player", "1", "--zone", "2", "--ttl", "1h",
        ];
        assert!(Cli::try_parse_from(args).is_ok());
        let with_key = [&args[..], &["--key-id", "3"]].concat();
        assert!(Cli::try_parse_from(with_key).is_err());
    }
}
