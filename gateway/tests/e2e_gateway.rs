//! End to end: the real `lanegate` binary, a real UDP socket, the client SDK.
//!
//! Each scenario runs twice, once per IO backend (`io_uring` forced, then
//! `portable`), against a gateway started with `--listen 127.0.0.1:0`; the
//! address and certificate fingerprint are read from its stdout
//! (`listening ADDR`, `fingerprint HEX`). A guard kills the process if a
//! test fails. Nothing waits on a sleep where an event exists: tests wait
//! for stdout lines, client events and the process's exit.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use lanegate_client::{Client, ClientError, CloseCode, Event, Transport, connect};
use lanegate_common::ids::{KeyId, PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Secret, Ticket};
use lanegate_common::wire::types;

/// The drain the tests configure: short, so the SIGTERM test is quick.
const DRAIN_TIMEOUT_MS: u64 = 5000;

#[macro_use]
mod e2e_support;

use e2e_support::{EXCHANGE_TIMEOUT, Gateway, Launch, unix_now_s};

/// Starts `lanegate serve` on `backend` with `extra` appended to the
/// `[gateway]` section of its configuration.
fn start(backend: &str, name: &str, extra: &str) -> Gateway {
    start_with_env(backend, name, extra, &[])
}

/// As [`start`], with extra environment variables.
fn start_with_env(
    backend: &str,
    name: &str,
    extra: &str,
    env: &[(&str, &std::ffi::OsStr)],
) -> Gateway {
    let launch = Launch {
        backend,
        name,
        drain_timeout_ms: DRAIN_TIMEOUT_MS,
        extra,
    };
    Gateway::start_with_env(&launch, env)
}

fn ticket_with(keys: &KeySet, key_id: KeyId, player: u64, issued: u64, expires: u64) -> String {
    keys.mint(&Ticket {
        key_id,
        player: PlayerId(player),
        zone: ZoneId(7),
        issued_at_s: issued,
        expires_at_s: expires,
    })
    .expect("mintable")
}

fn dev_ticket(player: u64) -> String {
    let now = unix_now_s();
    ticket_with(&KeySet::dev(), DEV_KEY_ID, player, now, now + 3600)
}

/// Sends one echo per lane on `transport` and waits for all four back
/// (other game traffic, such as the demo arena's, is skipped).
async fn echo_every_lane(client: &mut Client, transport: Transport, tag: u8) {
    let mut want: Vec<u16> = types::ECHO.to_vec();
    for ty in types::ECHO {
        client
            .send(ty, &[tag; 24], transport)
            .await
            .expect("echo sent");
    }
    let exchange = async {
        while !want.is_empty() {
            match client.recv().await.expect("the session stays up") {
                Event::Message {
                    ty,
                    payload,
                    transport: got,
                } if want.contains(&ty) && payload == [tag; 24] => {
                    assert_eq!(got, transport, "echo of {ty:#06x} on its own transport");
                    want.retain(|t| *t != ty);
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no echo for {want:04x?} over {transport:?}"));
}

/// Echoes on every lane until a round comes back: datagrams may be lost
/// while a path changes, so a lost round is retried.
async fn datagram_echo_with_retries(client: &mut Client, tag: u8) {
    for attempt in 0..5u8 {
        let tag = tag.wrapping_add(attempt);
        for ty in types::ECHO {
            client
                .send(ty, &[tag; 8], Transport::Datagram)
                .await
                .expect("echo sent");
        }
        let mut got = 0;
        let round = async {
            while got < types::ECHO.len() {
                if let Event::Message { ty, payload, .. } = client.recv().await.expect("session up")
                    && types::ECHO.contains(&ty)
                    && payload == [tag; 8]
                {
                    got += 1;
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(2), round)
            .await
            .is_ok()
        {
            return;
        }
    }
    panic!("no datagram echo round came back in 5 attempts");
}

/// Waits for a draining gateway to exit 0, and checks it did so before
/// `drain_timeout_ms` ran out (counted from `started`, the signal).
fn exits_0_before_the_drain_timeout(gw: &mut Gateway, started: Instant, why: &str) {
    let status = tokio::task::block_in_place(|| {
        gw.wait_exit(Duration::from_millis(DRAIN_TIMEOUT_MS) + Duration::from_secs(5))
    })
    .unwrap_or_else(|| panic!("still running after the drain; log:\n{}", gw.log()));
    assert_eq!(status.code(), Some(0), "log:\n{}", gw.log());
    assert!(
        started.elapsed() < Duration::from_millis(DRAIN_TIMEOUT_MS),
        "{why}"
    );
}

fn close_code(result: Result<Client, ClientError>) -> CloseCode {
    match result {
        Ok(_) => panic!("the session was accepted"),
        Err(e) => e.closed().unwrap_or_else(|| panic!("untyped: {e}")).code,
    }
}

async fn handshake_and_echo_on_every_lane(backend: &str) {
    let gw = start(backend, "echo", "");
    let mut client = connect(gw.options(&dev_ticket(11))).await.expect("welcome");
    assert_eq!(client.info().player, PlayerId(11));
    assert_eq!(client.info().zone, ZoneId(7));
    assert_eq!(client.info().tick_rate_hz, 30);
    echo_every_lane(&mut client, Transport::Datagram, 1).await;
    echo_every_lane(&mut client, Transport::Stream, 2).await;
    // A payload too large to travel inline in a ring entry (> 88 bytes).
    client
        .send(0x1fff, &[3; 900], Transport::Datagram)
        .await
        .expect("sent");
    let big = async {
        loop {
            if let Event::Message {
                ty: 0x1fff,
                payload,
                ..
            } = client.recv().await.expect("up")
                && payload.len() == 900
            {
                break payload;
            }
        }
    };
    let payload = tokio::time::timeout(EXCHANGE_TIMEOUT, big)
        .await
        .expect("the large echo came back");
    assert!(payload.iter().all(|b| *b == 3));
    client.close().await;
}

async fn bad_expired_and_forged_tickets_get_typed_close_codes(backend: &str) {
    let gw = start(backend, "tickets", "");
    let bad = connect(gw.options("this is not a ticket")).await;
    assert_eq!(close_code(bad), CloseCode::BadTicket);

    let now = unix_now_s();
    let expired = ticket_with(&KeySet::dev(), DEV_KEY_ID, 1, now - 7200, now - 3600);
    assert_eq!(
        close_code(connect(gw.options(&expired)).await),
        CloseCode::TicketExpired
    );

    let other = KeySet::new(vec![(
        DEV_KEY_ID,
        Secret::new(&[0x5a; 32]).expect("32 bytes"),
    )])
    .expect("a key set");
    let forged = ticket_with(&other, DEV_KEY_ID, 1, now, now + 3600);
    assert_eq!(
        close_code(connect(gw.options(&forged)).await),
        CloseCode::BadTicket
    );

    // The gateway still serves honest clients.
    let mut client = connect(gw.options(&dev_ticket(2))).await.expect("welcome");
    echo_every_lane(&mut client, Transport::Datagram, 4).await;
    client.close().await;
}

async fn probe_command_gets_every_lane(backend: &str) {
    let gw = start(backend, "probe", "");
    let (addr, fingerprint) = (gw.addr.to_string(), gw.fingerprint.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_lanegate"))
            .args(["probe", "--server", &addr, "--fingerprint", &fingerprint])
            .args(["--count", "5", "--interval", "10ms"])
            .output()
            .expect("lanegate probe runs")
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed: {stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    for lane in ["critical", "high", "normal", "bulk"] {
        assert!(stdout.contains(lane), "{stdout}");
    }
}

async fn bots_command_reports_every_lane(backend: &str) {
    let gw = start(backend, "bots", "");
    let (addr, fingerprint) = (gw.addr.to_string(), gw.fingerprint.clone());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let json = dir.join(format!("e2e-bots-{backend}-{}.json", std::process::id()));
    let html = dir.join(format!("e2e-bots-{backend}-{}.html", std::process::id()));
    let (json_arg, html_arg) = (json.clone(), html.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_lanegate"))
            .args(["bots", "--server", &addr, "--fingerprint", &fingerprint])
            .args(["--clients", "4", "--duration", "2s", "--rate", "normal=2"])
            .arg("--json")
            .arg(&json_arg)
            .arg("--report")
            .arg(&html_arg)
            .output()
            .expect("lanegate bots runs")
    })
    .await
    .expect("joined");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bots failed: {stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON report"))
            .expect("valid JSON");
    for lane in ["critical", "high", "normal", "bulk"] {
        let received = report["lanes"][lane]["received"].as_u64().unwrap_or(0);
        assert!(received > 0, "no {lane} echoes came back: {report}");
    }
    assert!(
        std::fs::read_to_string(&html)
            .expect("the HTML report")
            .contains("<svg")
    );
    let _ = std::fs::remove_file(json);
    let _ = std::fs::remove_file(html);
}

async fn sigterm_drains_clients_and_exits_0(backend: &str) {
    // A stand-in for systemd's notification socket.
    let notify_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("e2e-notify-{backend}-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&notify_path);
    let notify = UnixDatagram::bind(&notify_path).expect("a notify socket");
    notify
        .set_read_timeout(Some(EXCHANGE_TIMEOUT))
        .expect("a timeout");
    let notified = || {
        let mut buf = [0u8; 64];
        let n = notify.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut gw = start_with_env(
        backend,
        "drain",
        "",
        &[("NOTIFY_SOCKET", notify_path.as_os_str())],
    );
    assert_eq!(notified(), "READY=1");
    let mut client = connect(gw.options(&dev_ticket(3))).await.expect("welcome");
    echo_every_lane(&mut client, Transport::Datagram, 5).await;
    let started = Instant::now();
    gw.signal("TERM");
    let closed = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
        loop {
            if let Err(e) = client.recv().await {
                break e;
            }
        }
    })
    .await
    .expect("the client hears of the drain");
    assert_eq!(notified(), "STOPPING=1");
    assert_eq!(
        closed.closed().map(|c| c.code),
        Some(CloseCode::ServerDraining),
        "{closed}"
    );
    exits_0_before_the_drain_timeout(
        &mut gw,
        started,
        "the drain ended as soon as the client left, not at the timeout",
    );
    assert!(gw.log().contains("drained; exiting"), "{}", gw.log());
    let _ = std::fs::remove_file(&notify_path);
}

async fn rebinding_client_keeps_its_session(backend: &str) {
    // Two gateway cores where the host has them: the kernel picks a core's
    // socket by 4-tuple, so after a rebinding the client's packets land on
    // either core, and those on the wrong one must be steered back.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let two_cores = cores >= 2;
    let cores_line = if two_cores { "cores = [0, 1]\n" } else { "" };
    // Echo rounds come back within milliseconds, so the test would outrun
    // the default normal and bulk limits (burst 20); limits are not what it
    // tests.
    let extra = format!(
        "{cores_line}[lanes.limits.normal]\nrate_per_s = 10000\nburst = 10000\n\
         [lanes.limits.bulk]\nrate_per_s = 10000\nburst = 10000\n"
    );
    let mut gw = start(backend, "rebind", &extra);
    let mut client = connect(gw.options(&dev_ticket(4))).await.expect("welcome");
    let session = client.info().session;
    datagram_echo_with_retries(&mut client, 10).await;
    // Each new address lands on the other core with probability 1/2, so
    // 16 rebindings all missing it has odds of 1 in 65536.
    for round in 0..REBINDS {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a new local socket");
        let before = client.local_addr().expect("bound");
        client.rebind(socket).expect("rebound");
        assert_ne!(client.local_addr().expect("bound"), before);
        datagram_echo_with_retries(&mut client, 20 + round * 8).await;
        if round % 4 == 3 {
            echo_every_lane(&mut client, Transport::Stream, 200 + round).await;
        }
    }
    assert_eq!(client.info().session, session);
    client.close().await;
    gw.signal("TERM");
    let status = tokio::task::block_in_place(|| gw.wait_exit(Duration::from_secs(15)));
    let log = gw.log();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{log}");
    if two_cores {
        let steered: u64 = log
            .split("steered_in=")
            .skip(1)
            .filter_map(|rest| rest.split(' ').next()?.trim().parse::<u64>().ok())
            .sum();
        assert!(steered > 0, "no packet was steered between cores:\n{log}");
    }
}

/// Rebindings in [`rebinding_client_keeps_its_session`].
const REBINDS: u8 = 16;

async fn udp_garbage_does_not_hurt_the_gateway(backend: &str) {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let extra = if cores >= 2 { "cores = [0, 1]" } else { "" };
    let gw = start(backend, "garbage", extra);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bound");
    let mut junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        vec![0xff; 1],
        vec![0x40; 9],
        // Short headers naming each core, and cores that do not exist.
        [&[0x40u8, 0][..], &[0xab; 60]].concat(),
        [&[0x40u8, 1][..], &[0xab; 60]].concat(),
        [&[0x40u8, 200][..], &[0xab; 60]].concat(),
        // A v1 Handshake long header whose id names core 1, then junk.
        [&[0xe0u8, 0, 0, 0, 1, 8, 1][..], &[0xcd; 100]].concat(),
        // An Initial-looking header with a bad length.
        [&[0xc0u8, 0, 0, 0, 1, 0xff][..], &[0; 20]].concat(),
        vec![0x5a; 1500],
        vec![0xc3; 1600],
        vec![0x11; 9000],
    ];
    let mut x: u32 = 0x1234_5678;
    for len in [20usize, 200, 1200, 1350] {
        let mut v = vec![0u8; len];
        for b in &mut v {
            // xorshift: deterministic noise.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x.to_le_bytes()[0];
        }
        junk.push(v);
    }
    for _ in 0..20 {
        for j in &junk {
            let _ = socket.send_to(j, gw.addr);
        }
    }
    let mut client = connect(gw.options(&dev_ticket(5))).await.expect("welcome");
    echo_every_lane(&mut client, Transport::Datagram, 7).await;
    echo_every_lane(&mut client, Transport::Stream, 8).await;
    client.close().await;
}

/// Malformed stream frames from an established session close that session
/// with `PROTOCOL_VIOLATION` (the stream cannot be resynchronised), and
/// malformed game datagrams are dropped while it stays up; other sessions
/// and the process are untouched.
async fn malformed_frames_close_the_session_and_nothing_else(backend: &str) {
    let gw = start(backend, "frames", "");
    let mut bystander = connect(gw.options(&dev_ticket(60))).await.expect("welcome");

    // Datagrams that are not messages: dropped, the session stays up.
    let mut client = connect(gw.options(&dev_ticket(61))).await.expect("welcome");
    for junk in [&[][..], &[0x1f][..], &[0x00, 0x7f, 1, 2][..]] {
        client
            .connection()
            .send_datagram(bytes::Bytes::copy_from_slice(junk))
            .expect("datagram sent");
    }
    echo_every_lane(&mut client, Transport::Datagram, 61).await;

    // Frames of impossible lengths on a unidirectional stream.
    for (i, frame) in [
        &[0x00u8][..],
        &[0x01, 0x1f][..],
        &[0x80, 0x10, 0x00, 0x00][..],
    ]
    .into_iter()
    .enumerate()
    {
        let mut client = connect(gw.options(&dev_ticket(70 + i as u64)))
            .await
            .expect("welcome");
        let mut uni = client.connection().open_uni().await.expect("a uni stream");
        uni.write_all(frame).await.expect("written");
        let _ = uni.finish();
        let closed = tokio::time::timeout(EXCHANGE_TIMEOUT, async {
            loop {
                match client.recv().await {
                    Ok(_) => continue,
                    Err(e) => break e,
                }
            }
        })
        .await
        .expect("the gateway closes the session");
        assert_eq!(
            closed.closed().map(|c| c.code),
            Some(CloseCode::ProtocolViolation),
            "frame {frame:02x?}: {closed:?}"
        );
    }

    echo_every_lane(&mut bystander, Transport::Stream, 62).await;
    bystander.close().await;
    client.close().await;
}

async fn many_clients_each_get_their_own_echoes(backend: &str) {
    // The plain echo game this time; 16 clients stay within the handshake
    // burst one source address gets (20). The ladder stays at normal: on a
    // busy runner the 16 handshakes at once read as load, and level 1
    // sheds the `bulk` echoes this test waits for (the ladder has tests of
    // its own).
    let gw = start(
        backend,
        "many",
        "[shards]\ngame = \"echo\"\n[overload]\nenter_percent = \
         { shed_bulk = 197, defer_normal = 198, thin_high = 199, protect = 200 }",
    );
    let mut tasks = Vec::new();
    for player in 0..CLIENTS {
        let opts = gw.options(&dev_ticket(100 + player));
        tasks.push(tokio::spawn(async move {
            let mut client = connect(opts).await.expect("welcome");
            assert_eq!(client.info().player, PlayerId(100 + player));
            let tag = u8::try_from(player).expect("few clients");
            echo_every_lane(&mut client, Transport::Datagram, tag).await;
            echo_every_lane(&mut client, Transport::Stream, tag.wrapping_add(100)).await;
            client.info().session
        }));
    }
    let mut sessions = Vec::new();
    for task in tasks {
        sessions.push(task.await.expect("a client task"));
    }
    sessions.sort_by_key(|s| s.0);
    sessions.dedup();
    assert_eq!(sessions.len(), usize::try_from(CLIENTS).expect("few"));
}

/// Shards on the gateway cores' CPUs run on those cores' threads
/// (`shards.run_on_gateway_thread`): every lane still echoes over both
/// transports, for clients spread over the cores, and a drain still ends
/// as soon as the clients are gone.
async fn hosted_shards_echo_and_drain(backend: &str) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get().min(2));
    let list: Vec<String> = (0..cpus).map(|c| c.to_string()).collect();
    let list = list.join(", ");
    let extra = format!("cores = [{list}]\n[shards]\ncores = [{list}]\n");
    let mut gw = start(backend, "hosted", &extra);
    let log = gw.log();
    assert_eq!(
        log.matches("shard runs on the gateway core's thread")
            .count(),
        cpus,
        "every shard is hosted; log:\n{log}"
    );
    let mut clients = Vec::new();
    for player in 0..4u64 {
        let mut client = connect(gw.options(&dev_ticket(40 + player)))
            .await
            .expect("welcome");
        let tag = u8::try_from(player).unwrap_or(0);
        echo_every_lane(&mut client, Transport::Datagram, tag).await;
        echo_every_lane(&mut client, Transport::Stream, tag + 10).await;
        clients.push(client);
    }
    for client in clients {
        client.close().await;
    }
    let started = Instant::now();
    gw.signal("TERM");
    exits_0_before_the_drain_timeout(
        &mut gw,
        started,
        "hosting cores stop once every core has drained, not at the timeout",
    );
}

/// With a shard on its own thread ticking once a second and the gateway's
/// safety poll at its longest (100 ms), echoes still come back at once:
/// the gateway rings the shard's doorbell and the shard the gateway's. A
/// lost wake-up on either side would make each echo wait for the next tick
/// (up to 1 s) or poll (up to 100 ms): 20 echoes in a row would take
/// seconds, or about one.
async fn replies_do_not_wait_for_ticks_or_polls(backend: &str) {
    const ECHOES: u8 = 20;
    let extra = "ring_poll_us = 100000\n[shards]\ntick_rate_hz = 1\n\
                 tick_budget_us = 500000\nstall_after_ms = 5000\nstall_failover_ms = 10000\n\
                 run_on_gateway_thread = false\n";
    let gw = start(backend, "wake", extra);
    let mut client = connect(gw.options(&dev_ticket(60))).await.expect("welcome");
    // The first echo may wait for the tick that takes the join.
    echo_every_lane(&mut client, Transport::Stream, 0).await;
    let started = Instant::now();
    for i in 1..=ECHOES {
        client
            .send(types::ECHO_CRITICAL, &[i; 8], Transport::Stream)
            .await
            .expect("sent");
        let back = async {
            loop {
                if let Event::Message { ty, payload, .. } = client.recv().await.expect("up")
                    && ty == types::ECHO_CRITICAL
                    && payload == [i; 8]
                {
                    break;
                }
            }
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, back)
            .await
            .expect("the echo came back");
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(700),
        "{ECHOES} echoes took {took:?}: a side waited for its tick or poll"
    );
    client.close().await;
}

/// Clients in [`many_clients_each_get_their_own_echoes`].
const CLIENTS: u64 = 16;

on_both_backends!(
    handshake_and_echo_on_every_lane,
    bad_expired_and_forged_tickets_get_typed_close_codes,
    probe_command_gets_every_lane,
    bots_command_reports_every_lane,
    sigterm_drains_clients_and_exits_0,
    rebinding_client_keeps_its_session,
    udp_garbage_does_not_hurt_the_gateway,
    malformed_frames_close_the_session_and_nothing_else,
    many_clients_each_get_their_own_echoes,
    hosted_shards_echo_and_drain,
    replies_do_not_wait_for_ticks_or_polls,
);
