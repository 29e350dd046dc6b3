//! The status page in a real browser (issue 14 §5): the real `lanegate`
//! binary with its metrics endpoint, the bot swarm of `lanegate_bots`
//! playing on it, and Debian's `chromium` loading `/status.html` headless
//! twice while they play.
//!
//! Each load is `chromium --headless --dump-dom --virtual-time-budget`: the
//! page's script fetches `/status.json` and redraws every second of
//! virtual time (the browser holds virtual time while a fetch is out), and
//! the DOM after that budget is what a person would see. From it the test
//! reads the stable hooks the page documents (ids, `data-value`,
//! `data-total`) and checks that the figures are there, agree with the
//! JSON, and move between the two loads: uptime and the messages counted
//! since start grow, and messages per second are above zero while bots
//! play. A page that does not draw, a script error, or a `/status.json`
//! that breaks the page's expectations all fail it (`data-error`,
//! `data-renders`).
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium`; `.ci/run`
//! installs it). Without it the test is skipped with a note, unless
//! `LANEGATE_REQUIRE_TOOLS` is set, as CI does. About 3 s on a 2-vCPU
//! host (debug build), most of it the two browser starts.

#[allow(unused_macros)]
#[macro_use]
mod e2e_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e_support::swarm::{block_on, play, start, swarm};
use e2e_support::{Gateway, http_get};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Virtual time each load runs the page for: its first draw and two
/// refreshes.
const VIRTUAL_MS: u32 = 2500;
/// Wall time a load may take (a cold browser start on a busy runner).
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);
const PLAYERS: usize = 12;
/// Longer than the test needs: the swarm is stopped once the page is read.
const PLAY: Duration = Duration::from_secs(60);

#[test]
fn the_status_page_draws_its_figures_and_they_move() {
    let Some(browser) = chromium() else {
        return;
    };
    let gw = start("status-page", 2000, "[shards]\ngame = \"echo\"\n");
    let metrics = gw.metrics.expect("started with metrics");
    text_and_html_by_accept(metrics);
    let begin = Instant::now();
    block_on(async {
        let (connected_tx, connected) = tokio::sync::oneshot::channel();
        let bots = tokio::spawn(play(swarm(&gw, PLAYERS, PLAY, 7000), move || {
            let _ = connected_tx.send(());
        }));
        tokio::time::timeout(Duration::from_secs(30), connected)
            .await
            .expect("the bots connect within 30 s")
            .expect("the swarm runs");
        let first = tokio::task::block_in_place(|| load(&gw, &browser, "first"));
        check_figures(&gw, &first);
        let second = tokio::task::block_in_place(|| load(&gw, &browser, "second"));
        check_figures(&gw, &second);
        bots.abort();
        let (u1, u2) = (first.value("id=\"uptime\""), second.value("id=\"uptime\""));
        assert!(u2 > u1, "uptime moves: {u1} then {u2}");
        let total = |p: &Page| p.num("id=\"total-messages-in\"", "data-total");
        let (m1, m2) = (total(&first), total(&second));
        assert!(
            m2 > m1,
            "messages since start grow while bots play: {m1} then {m2}"
        );
    });
    eprintln!("status page: two loads in {:.1?}", begin.elapsed());
}

/// `curl /status` keeps the text; a browser's `Accept` gets the page.
fn text_and_html_by_accept(metrics: SocketAddr) {
    let (code, text) = http_get(metrics, "/status").expect("GET /status");
    assert_eq!(code, 200);
    assert!(text.starts_with("lanegate "), "{text}");
    let html = raw_get(
        metrics,
        "/status",
        "text/html,application/xhtml+xml,*/*;q=0.8",
    );
    assert!(html.contains("Content-Type: text/html"), "{html}");
    assert!(html.contains("<!doctype html>"), "{html}");
}

/// Every figure the page draws, checked against `/status.json` of the
/// same moment (give or take a second's publishing).
fn check_figures(gw: &Gateway, page: &Page) {
    let (code, json) = http_get(gw.metrics.expect("metrics"), "/status.json").expect("JSON");
    assert_eq!(code, 200, "{json}");
    let doc: serde_json::Value = serde_json::from_str(&json).expect("/status.json parses");
    let dom = &page.dom;
    assert_eq!(
        page.attr("<body", "data-error"),
        "",
        "the script failed:\n{dom}"
    );
    let renders: u32 = page.attr("<body", "data-renders").parse().expect("a count");
    assert!(
        renders >= 2,
        "drawn and refreshed at least once: {renders}\n{dom}"
    );
    let ok = page.attr("id=\"verdict\"", "data-ok");
    assert!(ok == "true" || ok == "false", "a verdict: {ok:?}\n{dom}");
    let word = page.text("id=\"verdict-word\"");
    assert_eq!(word == "OK", ok == "true", "{word} / {ok}");
    assert_eq!(
        page.text("id=\"version\""),
        doc["version"].as_str().expect("a version")
    );
    let backend = page.attr("id=\"backend\"", "data-value");
    assert!(
        ["io_uring", "portable"].contains(&backend.as_str()),
        "{backend:?}"
    );
    assert!(page.value("id=\"uptime\"") > 0.0);
    assert!(
        page.value("id=\"total-sessions\"") >= 1.0,
        "the bots' sessions"
    );
    let rate = page.value("id=\"total-messages-in\"");
    assert!(
        rate > 0.0,
        "messages in per second while bots play: {rate}\n{dom}"
    );
    // One row per core, shard and lane, as in the JSON.
    let cores = doc["cores"].as_array().expect("cores");
    for c in cores {
        let row = page.row(&format!("<tr data-core=\"{}\"", c["core"]));
        assert_eq!(row.field("backend"), c["backend"].as_str().unwrap_or(""));
    }
    let busy: f64 = (0..cores.len())
        .map(|i| {
            page.row(&format!("<tr data-core=\"{i}\""))
                .num("messages_in_per_s")
        })
        .sum();
    assert!(busy > 0.0, "a core forwards messages: {busy}");
    for s in doc["shards"].as_array().expect("shards") {
        let row = page.row(&format!("<tr data-shard=\"{}\"", s["shard"]));
        assert!(row.num("tick_p99_us") >= 0.0);
        assert!(row.num("players") >= 0.0);
    }
    for lane in ["critical", "high", "normal", "bulk"] {
        let row = page.row(&format!("<tr data-lane=\"{lane}\""));
        row.num("drops_per_s");
    }
    // The monitor's sections: drawn from the JSON, or "not measured yet".
    let state = |key: &str, id: &str, measured: &[&str]| {
        let s = page.attr(&format!("id=\"{id}\""), "data-state");
        if doc[key].is_null() {
            assert_eq!(s, "unmeasured", "#{id} with {key} null");
        } else {
            assert!(measured.contains(&s.as_str()), "#{id}: {s}");
        }
    };
    state("alerts", "alerts", &["none", "active"]);
    // Before the monitor's first forecast (it learns first) the section
    // is there with no series, and the page says so.
    let forecasts = doc["forecast"]["series"].as_array().map_or(0, Vec::len);
    state(
        "forecast",
        "forecast",
        if forecasts == 0 {
            &["unmeasured"]
        } else {
            &["measured"]
        },
    );
    state("learning", "learning", &["learning", "ready"]);
    if doc["latency"].is_null() {
        assert!(
            page.row("<tr data-lane=\"critical\"")
                .0
                .contains("not measured yet")
        );
    }
}

/// The DOM of one headless load of `/status.html`.
fn load(gw: &Gateway, browser: &Path, name: &str) -> Page {
    let url = format!("http://{}/status.html", gw.metrics.expect("metrics"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let pid = std::process::id();
    let profile = dir.join(format!("chromium-{name}-{pid}"));
    let out = dir.join(format!("status-page-{name}-{pid}.html"));
    let err = dir.join(format!("status-page-{name}-{pid}.log"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            // The sandbox needs user namespaces a container or root run
            // may lack; the page is our own.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--virtual-time-budget={VIRTUAL_MS}"),
            "--dump-dom",
            &url,
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("the target tmp dir is writable"))
        .stderr(std::fs::File::create(&err).expect("the target tmp dir is writable"))
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over {LOAD_TIMEOUT:?} to load {url}");
        }
        // Polling a child's exit: there is no portable exit event to wait
        // on with a timeout.
        std::thread::sleep(Duration::from_millis(20));
    };
    let dom = std::fs::read_to_string(&out).unwrap_or_default();
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(
        status.success() && dom.contains("</html>"),
        "chromium {status} on {url}:\n{log}\n{dom}"
    );
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&err);
    Page { dom }
}

/// Debian's chromium, or `None` (skip) when it is not installed and
/// `LANEGATE_REQUIRE_TOOLS` is not set.
fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    // CI sets LANEGATE_REQUIRE_TOOLS so the check cannot pass by skipping.
    assert!(
        std::env::var_os("LANEGATE_REQUIRE_TOOLS").is_none(),
        "{CHROMIUM} is required (LANEGATE_REQUIRE_TOOLS is set): apt-get install chromium"
    );
    eprintln!("skipped: {CHROMIUM} not installed (apt-get install chromium)");
    None
}

/// A request with an `Accept` header; the whole response, head and body.
fn raw_get(addr: SocketAddr, path: &str, accept: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .expect("the request is sent");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("a response");
    out
}

/// A dumped DOM, read by the hooks the page documents. Chromium serialises
/// attributes as `name="value"`, in source order.
struct Page {
    dom: String,
}

impl Page {
    /// The start tag holding `marker` (such as `id="uptime"` or `<body`).
    fn tag(&self, marker: &str) -> &str {
        let at = self
            .dom
            .find(marker)
            .unwrap_or_else(|| panic!("no {marker} in the page:\n{}", self.dom));
        let start = self.dom[..=at].rfind('<').expect("inside a tag");
        let end = at + self.dom[at..].find('>').expect("a closed tag");
        &self.dom[start..=end]
    }

    fn attr(&self, marker: &str, name: &str) -> String {
        attr(self.tag(marker), name).unwrap_or_else(|| panic!("no {name} on {}", self.tag(marker)))
    }

    fn num(&self, marker: &str, name: &str) -> f64 {
        let v = self.attr(marker, name);
        v.parse()
            .unwrap_or_else(|_| panic!("{marker} {name}={v:?} is not a number"))
    }

    /// The element's `data-value`, a number.
    fn value(&self, marker: &str) -> f64 {
        self.num(marker, "data-value")
    }

    /// The element's text, up to its first child tag.
    fn text(&self, marker: &str) -> &str {
        let tag = self.tag(marker);
        let from = self.dom.find(tag).expect("the tag") + tag.len();
        let to = from + self.dom[from..].find('<').unwrap_or(0);
        &self.dom[from..to]
    }

    /// The table row that starts with `marker`, up to its `</tr>`.
    fn row(&self, marker: &str) -> Row<'_> {
        let at = self
            .dom
            .find(marker)
            .unwrap_or_else(|| panic!("no row {marker} in the page:\n{}", self.dom));
        let end = at + self.dom[at..].find("</tr>").expect("a closed row");
        Row(&self.dom[at..end])
    }
}

struct Row<'a>(&'a str);

impl Row<'_> {
    /// The `data-value` of the row's cell `data-field="field"`.
    fn field(&self, field: &str) -> String {
        let marker = format!("data-field=\"{field}\"");
        let at = self
            .0
            .find(&marker)
            .unwrap_or_else(|| panic!("no {field} in {}", self.0));
        let start = self.0[..at].rfind('<').expect("inside a tag");
        let end = at + self.0[at..].find('>').expect("a closed tag");
        attr(&self.0[start..=end], "data-value").unwrap_or_default()
    }

    fn num(&self, field: &str) -> f64 {
        let v = self.field(field);
        v.parse()
            .unwrap_or_else(|_| panic!("{field}={v:?} is not a number in {}", self.0))
    }
}

/// The value of attribute `name` in start tag `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let from = tag.find(&key)? + key.len();
    let to = from + tag[from..].find('"')?;
    Some(tag[from..to].replace("&amp;", "&").replace("&quot;", "\""))
}
