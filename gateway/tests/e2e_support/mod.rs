//! What the `e2e_*` suites share: the real `lanegate` binary started on a
//! loopback port with a configuration file, a guard that kills it when a
//! test fails, tickets, and waits with deadlines.
//!
//! Every `e2e_*` suite starts its gateways through this module. The address
//! and certificate fingerprint are read from the gateway's stdout
//! (`listening ADDR`, `fingerprint HEX`); nothing waits on a sleep where an
//! event exists.
//!
//! The metrics endpoint is off unless a suite asks for it
//! ([`Gateway::start_with_metrics`]): then it listens on a free loopback
//! port the gateway picks and prints (`metrics ADDR`), and [`http_get`]
//! fetches its pages.

// Each suite uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lanegate_client::{
    Client, ClientError, CloseCode, ConnectOptions, Event, ServerVerify, connect,
};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};

pub mod swarm;

/// How long the gateway may take to start (debug build, self-signed cert).
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one client exchange may take.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a gateway.
pub struct Launch<'a> {
    /// `gateway.io_backend`.
    pub backend: &'a str,
    /// Names the config and log files.
    pub name: &'a str,
    /// `gateway.drain_timeout_ms`.
    pub drain_timeout_ms: u64,
    /// Appended to the `[gateway]` section; may open further sections
    /// (`[observability]` too: the metrics endpoint is set by flag).
    pub extra: &'a str,
}

/// A running gateway; killed on drop unless it already exited.
pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    pub fingerprint: String,
    /// The metrics endpoint, when started with it.
    pub metrics: Option<SocketAddr>,
    config: PathBuf,
    stderr: PathBuf,
}

impl Gateway {
    /// Starts `lanegate serve` as `launch` says and waits until it listens.
    pub fn start(launch: &Launch<'_>) -> Gateway {
        Self::start_with_env(launch, &[])
    }

    /// As [`Gateway::start`], with extra environment variables (such as
    /// `NOTIFY_SOCKET`).
    pub fn start_with_env(launch: &Launch<'_>, env: &[(&str, &std::ffi::OsStr)]) -> Gateway {
        Self::spawn(launch, env, false)
    }

    /// As [`Gateway::start`], with the metrics endpoint on a free loopback
    /// port ([`Gateway::metrics`]).
    pub fn start_with_metrics(launch: &Launch<'_>) -> Gateway {
        Self::spawn(launch, &[], true)
    }

    fn spawn(launch: &Launch<'_>, env: &[(&str, &std::ffi::OsStr)], metrics: bool) -> Gateway {
        let Launch {
            backend,
            name,
            drain_timeout_ms,
            extra,
        } = *launch;
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // The process id keeps concurrent runs of a suite apart.
        let pid = std::process::id();
        let config = dir.join(format!("e2e-{name}-{backend}-{pid}.toml"));
        let stderr = dir.join(format!("e2e-{name}-{backend}-{pid}.log"));
        // Port 0: the gateway binds a free port and prints it, so parallel
        // tests never race for one.
        let metrics_listen = if metrics { "127.0.0.1:0" } else { "off" };
        std::fs::write(
            &config,
            format!(
                "[gateway]\nio_backend = \"{backend}\"\ndrain_timeout_ms = {drain_timeout_ms}\n\
                 {extra}\n"
            ),
        )
        .expect("the target tmp dir is writable");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lanegate"))
            // The endpoint by flag, so `extra` may open `[observability]`.
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                metrics_listen,
            ])
            .arg("--config")
            .arg(&config)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("log file"))
            .spawn()
            .expect("the lanegate binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut gateway = Gateway {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            fingerprint: String::new(),
            metrics: None,
            config,
            stderr,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while gateway.addr.port() == 0
            || gateway.fingerprint.is_empty()
            || (metrics && gateway.metrics.is_none())
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no `listening`/`fingerprint` lines within {START_TIMEOUT:?}; log:\n{}",
                    gateway.log()
                )
            });
            if let Some(addr) = line.strip_prefix("listening ") {
                gateway.addr = addr.parse().expect("`listening` names an address");
            } else if let Some(fp) = line.strip_prefix("fingerprint ") {
                gateway.fingerprint = fp.to_owned();
            } else if let Some(addr) = line.strip_prefix("metrics ") {
                gateway.metrics = Some(addr.parse().expect("`metrics` names an address"));
            }
        }
        gateway
    }

    /// Options to connect to this gateway with `ticket`.
    pub fn options(&self, ticket: &str) -> ConnectOptions {
        let verify = ServerVerify::fingerprint_hex(&self.fingerprint).expect("a printed pin");
        let mut opts = ConnectOptions::new(self.addr, "localhost", ticket, verify);
        opts.handshake_timeout = EXCHANGE_TIMEOUT;
        opts
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gateway's resident memory now, bytes (`VmRSS` of
    /// `/proc/PID/status`); 0 where there is no such file.
    pub fn rss_bytes(&self) -> u64 {
        rss_bytes(self.pid())
    }

    /// One scrape of `/metrics` (the gateway must have been started with
    /// its metrics endpoint).
    pub fn scrape(&self) -> String {
        let addr = self.metrics.expect("started with metrics");
        match http_get(addr, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET /metrics: {other:?}; log:\n{}", self.log()),
        }
    }

    /// What the gateway logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends signal `name` (`TERM`, `INT`) to the gateway.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            // Polling a child's exit: there is no portable exit event to
            // wait on with a timeout.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The log stays behind when the test failed, for a look.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.config);
            let _ = std::fs::remove_file(&self.stderr);
        }
    }
}

/// A QUIC handshake the gateway has accepted and that never finishes: it
/// holds a drain for three probe timeouts of an unmeasured path (about 3 s
/// with quinn's 333 ms initial RTT), where a connected client is gone in
/// tens of milliseconds.
pub struct HalfOpen {
    client: tokio::task::JoinHandle<()>,
    // Kept open so the gateway's replies land somewhere (no ICMP errors).
    _front: UdpSocket,
    _back: UdpSocket,
}

impl HalfOpen {
    /// Relays a client's first datagram to `gw` and waits for the
    /// gateway's answer, which means it holds the connection.
    pub async fn start(gw: &Gateway, ticket: &str) -> HalfOpen {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bound");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bound");
        for s in [&front, &back] {
            s.set_read_timeout(Some(EXCHANGE_TIMEOUT)).expect("timeout");
        }
        let mut opts = gw.options(ticket);
        opts.server = front.local_addr().expect("bound");
        opts.handshake_timeout = Duration::from_secs(600);
        let client = tokio::spawn(async move {
            let _ = connect(opts).await;
        });
        let gateway = gw.addr;
        let (front, back) = tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 2048];
            let (n, _) = front.recv_from(&mut buf).expect("the client's Initial");
            back.send_to(&buf[..n], gateway).expect("relayed");
            // The gateway's Initial back: it accepted the connection.
            back.recv_from(&mut buf)
                .expect("the gateway answers the Initial");
            (front, back)
        })
        .await
        .expect("joined");
        HalfOpen {
            client,
            _front: front,
            _back: back,
        }
    }
}

impl Drop for HalfOpen {
    fn drop(&mut self) {
        self.client.abort();
    }
}

/// `GET path` over plain HTTP/1.1: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, EXCHANGE_TIMEOUT)?;
    stream.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head end in {response:?}")))?;
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status in {head:?}")))?;
    Ok((code, body.to_owned()))
}

/// Resident memory of process `pid`, bytes (`VmRSS` of `/proc/PID/status`);
/// 0 where there is no such file.
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
    status
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0)
}

/// The sum of every series of `name` whose labels include `labels`, in a
/// scrape of `/metrics`; `None` when there is no such series.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut sum = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, v)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, l) = series.split_once('{').unwrap_or((series, ""));
        if n != name {
            continue;
        }
        let have: Vec<(&str, &str)> = l
            .trim_end_matches('}')
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"')))
            .collect();
        if labels.iter().all(|want| have.contains(want)) {
            *sum.get_or_insert(0.0) += v.parse::<f64>().unwrap_or(f64::NAN);
        }
    }
    sum
}

/// Seconds since the Unix epoch.
pub fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// A dev-key ticket for `player` in `zone`, valid for an hour.
pub fn ticket(player: u64, zone: u32) -> String {
    let now = unix_now_s();
    KeySet::dev()
        .mint(&Ticket {
            key_id: DEV_KEY_ID,
            player: PlayerId(player),
            zone: ZoneId(zone),
            issued_at_s: now,
            expires_at_s: now + 3600,
        })
        .expect("mintable")
}

/// The typed close of a failed call.
pub fn close_code(e: &ClientError) -> CloseCode {
    e.closed().unwrap_or_else(|| panic!("untyped: {e}")).code
}

/// The next event that `pick` maps to `Some`, skipping the others, before
/// `deadline`; `None` when the deadline passes first.
pub async fn next_matching<T>(
    client: &mut Client,
    deadline: tokio::time::Instant,
    mut pick: impl FnMut(Event) -> Option<T>,
) -> Option<T> {
    let wanted = async {
        loop {
            let event = client.recv().await.expect("the session stays up");
            if let Some(t) = pick(event) {
                break t;
            }
        }
    };
    tokio::time::timeout_at(deadline, wanted).await.ok()
}

/// One test per scenario and backend, so they run in parallel.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod io_uring {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario("io_uring").await;
                }
            )*
        }
        mod portable {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario("portable").await;
                }
            )*
        }
    };
}
