//! The HTTP side of the metrics endpoint: one unpinned thread, one request
//! at a time, on std's `TcpListener`.
//!
//! - `GET /metrics`: the Prometheus text format, or OpenMetrics when the
//!   `Accept` header asks for it ([`super::encode`]);
//! - `GET /status`: the one-screen text status ([`super::status`]); from a
//!   browser (an `Accept` header naming `text/html`) the HTML status page
//!   instead ([`super::status_page`]), so `curl /status` keeps the text;
//! - `GET /status.html`: the HTML status page, whatever the `Accept`;
//! - `GET /status.json`: the same figures as JSON ([`super::status_json`]),
//!   which the page reads every second;
//! - `GET /healthz`: liveness: `200 ok` while serving, `503 draining` once
//!   the drain has started, for load balancers;
//! - `GET /readyz`: readiness: `200 ready` while the gateway can take
//!   players, `503` once draining or when every shard was failed over
//!   (`no shard available`; fences are forever, so only a restart brings
//!   it back), for orchestrators;
//! - any other path `404`, any other method `405`.
//!
//! Bounds, because this port may face more than Prometheus: one thread;
//! a request head of at most [`REQUEST_HEAD_BYTES_MAX`] bytes, read within
//! [`REQUEST_TIMEOUT`] in total (a slow client holds the endpoint for that
//! long at most); one response per connection. We serve this ourselves
//! rather than through `tiny_http`, which starts a thread per connection
//! with no cap and sets no read timeout.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::{Sample, Sources, encode, status, status_json, status_page};

/// Longest request head read, in bytes: a scrape's is a few hundred.
pub const REQUEST_HEAD_BYTES_MAX: usize = 4096;

/// Time a client gets to send its request head, and to take the response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// How long stopping waits for the thread before leaving it behind.
const STOP_WAIT: Duration = Duration::from_millis(500);

/// Pause after a failed `accept` (such as out of file descriptors), which
/// would otherwise fail again at once and spin the thread.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The listen address could not be bound.
    #[error(
        "observability.metrics_listen: cannot listen on {addr}: {source}; \
         choose a free address (or port 0), or set metrics_listen = \"off\""
    )]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// The thread could not be started.
    #[error("starting the metrics thread: {0}")]
    Thread(io::Error),
}

/// Binds the endpoint's socket: done early in start-up, so a taken port
/// fails before any player can connect.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr).map_err(|source| MetricsError::Bind { addr, source })
}

/// The running endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    done: mpsc::Receiver<()>,
    handle: JoinHandle<()>,
}

impl MetricsServer {
    /// Serves `sources` on `listener` from a new thread.
    pub fn start(listener: TcpListener, sources: Sources) -> Result<Self, MetricsError> {
        let addr = listener.local_addr().map_err(MetricsError::Thread)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = mpsc::channel();
        let handle = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("lanegate-metrics".to_owned())
                .spawn(move || {
                    serve(&listener, &sources, &stop);
                    let _ = done_tx.send(());
                })
                .map_err(MetricsError::Thread)?
        };
        info!(
            %addr,
            "metrics endpoint serving /metrics, /status (.html, .json), /healthz, /readyz"
        );
        Ok(Self {
            addr,
            stop,
            done,
            handle,
        })
    }

    /// The bound address (the real port when the configuration said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the thread: raises the flag and wakes its `accept` with a
    /// connection of our own. A thread stuck on a slow client is left
    /// behind after `STOP_WAIT`; it cannot keep the process alive.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let wake = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv4Addr::LOCALHOST, self.addr.port()))
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::from((Ipv6Addr::LOCALHOST, self.addr.port()))
            }
            _ => self.addr,
        };
        let _ = TcpStream::connect_timeout(&wake, STOP_WAIT);
        if self.done.recv_timeout(STOP_WAIT).is_ok() {
            let _ = self.handle.join();
        } else {
            warn!("the metrics thread did not stop in time; leaving it behind");
        }
    }
}

fn serve(listener: &TcpListener, sources: &Sources, stop: &AtomicBool) {
    let mut body = String::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match stream {
            Ok(stream) => {
                if let Err(e) = handle(stream, sources, &mut body) {
                    debug!(error = %e, "metrics request failed");
                }
            }
            // Out of file descriptors, or a connection reset before it was
            // accepted: nothing to answer.
            Err(e) => {
                debug!(error = %e, "metrics accept failed");
                thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

fn handle(mut stream: TcpStream, sources: &Sources, body: &mut String) -> io::Result<()> {
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut head = [0u8; REQUEST_HEAD_BYTES_MAX];
    let mut len = 0;
    let complete = loop {
        if head_complete(&head[..len]) {
            break true;
        }
        if len == head.len() {
            break false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut head[len..])? {
            0 => return Ok(()),
            n => len += n,
        }
    };
    body.clear();
    let (response, head_only) = match request_line(&head[..len]) {
        Some((method, path)) if complete => {
            let accept = header(&head[..len], "accept");
            let status = route(method, path, accept, &sources.sample(), body);
            (status, method == "HEAD")
        }
        _ => {
            body.push_str("bad request\n");
            (Status::BAD_REQUEST, false)
        }
    };
    write!(
        stream,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        response.code,
        response.reason,
        response.content_type,
        body.len(),
        response.extra_header,
    )?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// A response's status line and headers; the body is written apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// HTTP status code.
    pub code: u16,
    /// Its reason phrase.
    pub reason: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// One more header line with its CRLF, or empty.
    pub extra_header: &'static str,
}

const TEXT: &str = "text/plain; charset=utf-8";

/// What a page's answer may be cached for: never, as it is the state now;
/// `Vary` because `/status` answers by `Accept`.
const FRESH: &str = "Cache-Control: no-store\r\nVary: Accept\r\n";

impl Status {
    const fn text(code: u16, reason: &'static str) -> Self {
        Self {
            code,
            reason,
            content_type: TEXT,
            extra_header: "",
        }
    }

    const OK: Status = Status::text(200, "OK");
    const BAD_REQUEST: Status = Status::text(400, "Bad Request");
    const NOT_FOUND: Status = Status::text(404, "Not Found");
    const UNAVAILABLE: Status = Status::text(503, "Service Unavailable");
}

/// Answers `method path` from `sample`, writing the body into `body`.
/// `accept` is the request's `Accept` header.
pub fn route(
    method: &str,
    path: &str,
    accept: Option<&str>,
    sample: &Sample,
    body: &mut String,
) -> Status {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let known = matches!(
        path,
        "/metrics" | "/status" | "/status.html" | "/status.json" | "/healthz" | "/readyz"
    );
    if !known {
        body.push_str(
            "not found: try /metrics, /status, /status.html, /status.json, /healthz or /readyz\n",
        );
        return Status::NOT_FOUND;
    }
    if method != "GET" && method != "HEAD" {
        body.push_str("method not allowed\n");
        return Status {
            extra_header: "Allow: GET, HEAD\r\n",
            ..Status::text(405, "Method Not Allowed")
        };
    }
    // Writing into a String cannot fail; the encoders' fmt::Result is for
    // other writers.
    match path {
        "/metrics" => {
            let format = encode::Format::from_accept(accept);
            let _ = encode::render(sample, format, body);
            Status {
                content_type: format.content_type(),
                ..Status::OK
            }
        }
        "/status.html" => html(body),
        "/status" if status_page::wants_html(accept) => html(body),
        "/status" => {
            let _ = status::render(sample, body);
            Status {
                extra_header: FRESH,
                ..Status::OK
            }
        }
        "/status.json" => {
            status_json::render(sample, body);
            Status {
                content_type: "application/json",
                extra_header: FRESH,
                ..Status::OK
            }
        }
        _ if sample.draining => {
            body.push_str("draining\n");
            Status::UNAVAILABLE
        }
        "/readyz" if !sample.ready() => {
            body.push_str("no shard available\n");
            Status::UNAVAILABLE
        }
        "/readyz" => {
            body.push_str("ready\n");
            Status::OK
        }
        _ => {
            body.push_str("ok\n");
            Status::OK
        }
    }
}

/// The HTML status page: static, its script reads `/status.json`.
fn html(body: &mut String) -> Status {
    body.push_str(status_page::PAGE);
    Status {
        content_type: "text/html; charset=utf-8",
        extra_header: FRESH,
        ..Status::OK
    }
}

/// Whether `head` holds a whole request head (a blank line ends it).
fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// The value of header `name` in a request head, if present.
fn header<'h>(head: &'h [u8], name: &str) -> Option<&'h str> {
    let text = std::str::from_utf8(head).ok()?;
    text.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The method and target of an HTTP/1.x request line.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && version.starts_with("HTTP/1.") && target.starts_with('/'))
        .then_some((method, target))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn sample(draining: bool) -> Sample {
        Sample {
            now: Instant::now(),
            cores: Vec::new(),
            shards: Vec::new(),
            shard_latency: Vec::new(),
            socket_drops: Vec::new(),
            draining,
            tick_budget_us: 10_000,
            uptime: Duration::ZERO,
            started_unix_s: 0.0,
            monitor: None,
        }
    }

    fn get(path: &str, draining: bool) -> (u16, String) {
        let mut body = String::new();
        let status = route("GET", path, None, &sample(draining), &mut body);
        (status.code, body)
    }

    #[test]
    fn routes() {
        let (code, body) = get("/metrics", false);
        assert_eq!(code, 200);
        assert!(body.contains("# TYPE lanegate_draining gauge"), "{body}");
        let (code, body) = get("/status?verbose=1", false);
        assert_eq!(code, 200);
        assert!(body.starts_with("lanegate "), "{body}");
        assert_eq!(get("/healthz", false), (200, "ok\n".to_owned()));
        let (code, body) = get("/status.json", false);
        assert_eq!(code, 200);
        let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(doc["schema"], 1);
        let (code, body) = get("/status.html", false);
        assert_eq!(code, 200);
        assert!(body.starts_with("<!doctype html>"), "{body}");
        assert_eq!(get("/healthz", true), (503, "draining\n".to_owned()));
        assert_eq!(get("/", false).0, 404);
        assert_eq!(get("/metrics/x", false).0, 404);
        assert_eq!(get("/metrics/x", false).0, 404);
        let mut body = String::new();
        let s = route("POST", "/metrics", None, &sample(false), &mut body);
        assert_eq!((s.code, s.extra_header), (405, "Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn status_answers_browsers_with_the_page_and_curl_with_text() {
        let s = sample(false);
        let ask = |path: &str, accept: Option<&str>| {
            let mut body = String::new();
            let status = route("GET", path, accept, &s, &mut body);
            (status.content_type, body)
        };
        let browser = Some("text/html,application/xhtml+xml,*/*;q=0.8");
        let (ty, body) = ask("/status", browser);
        assert_eq!(ty, "text/html; charset=utf-8");
        assert_eq!(body, status_page::PAGE);
        let (ty, body) = ask("/status", Some("*/*"));
        assert_eq!(ty, TEXT);
        assert!(body.starts_with("lanegate "), "{body}");
        assert_eq!(ask("/status.html", None).1, status_page::PAGE);
        let (ty, _) = ask("/status.json", browser);
        assert_eq!(ty, "application/json");
        let mut body = String::new();
        let st = route("GET", "/status.json", None, &s, &mut body);
        assert!(st.extra_header.contains("Cache-Control: no-store"));
    }

    #[test]
    fn readyz_is_503_once_draining_or_when_every_shard_is_failed_over() {
        use lanegate_common::link::ShardHealth;
        let ready = |draining: bool, fenced: &[bool]| {
            let mut s = sample(draining);
            s.shards = fenced
                .iter()
                .map(|&fenced| ShardHealth {
                    fenced,
                    ..ShardHealth::default()
                })
                .collect();
            let mut body = String::new();
            let status = route("GET", "/readyz", None, &s, &mut body);
            (status.code, body)
        };
        assert_eq!(ready(false, &[false, false]), (200, "ready\n".to_owned()));
        assert_eq!(ready(false, &[true, false]), (200, "ready\n".to_owned()));
        assert_eq!(
            ready(false, &[true, true]),
            (503, "no shard available\n".to_owned())
        );
        assert_eq!(ready(true, &[false]), (503, "draining\n".to_owned()));
        // Liveness is not readiness: the process still serves its other
        // endpoints and drains as usual.
        let mut s = sample(false);
        s.shards = vec![ShardHealth {
            fenced: true,
            ..ShardHealth::default()
        }];
        let mut body = String::new();
        assert_eq!(route("GET", "/healthz", None, &s, &mut body).code, 200);
    }

    #[test]
    fn request_lines_parse_strictly() {
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_line(b"GET /status HTTP/1.0\n\n"),
            Some(("GET", "/status"))
        );
        assert_eq!(request_line(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(request_line(b"GET metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_line(b"GET / HTTP/2 extra\r\n\r\n"), None);
        assert_eq!(request_line(b"\xff\xfe /x HTTP/1.1\r\n\r\n"), None);
        assert_eq!(
            request_line(b"GET /metrics HTTP/1.1"),
            None,
            "no line end yet"
        );
        assert!(head_complete(b"GET / HTTP/1.1\r\nA: b\r\n\r\n"));
        let head = b"GET / HTTP/1.1\r\nHost: x\r\naccept:  text/plain \r\n\r\n";
        assert_eq!(header(head, "accept"), Some("text/plain"));
        assert_eq!(header(head, "range"), None);
        assert!(!head_complete(b"GET / HTTP/1.1\r\nA: b\r\n"));
    }

    fn sources(draining: bool) -> Sources {
        Sources {
            cores: Vec::new(),
            shards: Vec::new(),
            shard_latency: Vec::new(),
            socket_drops: lanegate_udp::SocketDrops::default(),
            draining: Arc::new(AtomicBool::new(draining)),
            tick_budget_us: 10_000,
            started: Instant::now(),
            started_wall: std::time::SystemTime::now(),
            monitor: None,
        }
    }

    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_over_tcp_bounds_the_head_and_stops() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let server = MetricsServer::start(listener, sources(false)).unwrap();
        let addr = server.addr();
        let r = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.contains("Content-Length: 3\r\n") && r.ends_with("\r\n\r\nok\n"),
            "{r}"
        );
        let r = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        let text = encode::Format::Text.content_type();
        assert!(r.contains(text) && r.ends_with("\r\n\r\n"), "{r}");
        let r = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n",
        );
        let open = encode::Format::OpenMetrics.content_type();
        assert!(r.contains(open) && r.ends_with("# EOF\n"), "{r}");
        // An endless head is cut off at the limit with a 400.
        let mut s = TcpStream::connect(addr).unwrap();
        let junk = vec![b'a'; REQUEST_HEAD_BYTES_MAX];
        let _ = s.write_all(&junk);
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        server.stop();
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    #[test]
    fn a_taken_address_names_the_field() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let e = bind(taken.local_addr().unwrap()).unwrap_err().to_string();
        assert!(
            e.starts_with("observability.metrics_listen: cannot listen on 127.0.0.1:"),
            "{e}"
        );
        assert!(e.contains("metrics_listen = \"off\""), "{e}");
    }
}
