//! Swarm after swarm of bot endpoints in one process must not make quinn's
//! receive buffers resident (`lanegate_bots::endpoint`). Its own test
//! binary: RSS is the whole process's.
//!
//! Each swarm makes its endpoints as a bot does (`endpoint::bind`, then the
//! SDK's `connect_on`), all up at once; each sends its Initial to a
//! responder on loopback that answers with a Version Negotiation packet for
//! a version nobody speaks, so every endpoint has received a datagram when
//! its connect fails with a version mismatch. Address space and RSS are read
//! while the swarm is up; then the endpoints are dropped, and the next swarm starts once their
//! sockets are closed (the endpoint drivers have ended and freed the
//! buffers).
//!
//! The figures in `endpoint`'s doc, with quinn's default endpoints for the
//! comparison:
//!
//! ```sh
//! LANEGATE_RSS_ENDPOINTS=1000 cargo test -p lanegate-bots --test endpoint_rss -- --nocapture bots_endpoints
//! LANEGATE_RSS_ENDPOINTS=1000 cargo test -p lanegate-bots --test endpoint_rss -- --ignored --nocapture quinn_default
//! ```
#![cfg(target_os = "linux")]

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use lanegate_client::{ClientError, ConnectOptions, ServerVerify, connect_on};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

/// Endpoints per swarm unless `LANEGATE_RSS_ENDPOINTS` says otherwise.
const ENDPOINTS_DEFAULT: usize = 300;
const SWARMS: usize = 3;
/// Most address space, and most RSS, a live bot endpoint may add. Each
/// holds a 46 KiB receive buffer, about 100 KiB in all with its failed
/// connection; quinn's default buffer alone is 3 MiB.
const MEMORY_PER_ENDPOINT_MAX: usize = 512 * 1024;
const PAGE_BYTES: usize = 4096;
/// Connects in flight at once: their Initials (1200 bytes each) must fit in
/// the responder's default receive buffer, or the lost ones wait a PTO.
const CONNECTS_IN_FLIGHT: usize = 32;
/// How long the endpoints of a swarm may take to close their sockets (a
/// failed connection drains for three PTOs, 3 s, before its endpoint ends).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// A QUIC version no implementation speaks (RFC 9000 §15 reserves
/// `0x?a?a?a?a`), offered in the Version Negotiation answer.
const NOBODYS_VERSION: u32 = 0x1a2a_3a4a;

#[tokio::test]
async fn swarm_after_swarm_of_bots_endpoints_stays_small() {
    let endpoints = endpoints_per_swarm();
    let grown = swarms(endpoints, lanegate_bots::endpoint::bind).await;
    for (swarm, grown) in grown.into_iter().enumerate() {
        // Whatever the allocator does with them, live buffers take address
        // space: quinn's default ones 3 MiB each, in every swarm.
        assert!(
            grown.size < endpoints * MEMORY_PER_ENDPOINT_MAX,
            "swarm {swarm}: {endpoints} endpoints took {} MiB of address space",
            grown.size >> 20
        );
        assert!(
            grown.rss < endpoints * MEMORY_PER_ENDPOINT_MAX,
            "swarm {swarm}: RSS grew {} MiB for {endpoints} endpoints",
            grown.rss >> 20
        );
    }
}

/// The same swarms on quinn's default endpoints, for comparison (the old
/// bots without an allocator setting). Only prints: 3 MiB of address space
/// per endpoint in every swarm, and glibc makes the third swarm's buffers
/// resident.
#[tokio::test]
#[ignore = "a comparison that takes 3 MiB of RSS per endpoint"]
async fn quinn_default_endpoints_for_comparison() {
    swarms(endpoints_per_swarm(), quinn::Endpoint::client).await;
}

fn endpoints_per_swarm() -> usize {
    std::env::var("LANEGATE_RSS_ENDPOINTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ENDPOINTS_DEFAULT)
}

/// Runs [`SWARMS`] swarms of `endpoints` endpoints made by `make`; what
/// each added to the process's memory while up, also printed.
async fn swarms(
    endpoints: usize,
    make: fn(SocketAddr) -> io::Result<quinn::Endpoint>,
) -> Vec<Memory> {
    let responder = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("a loopback port");
    let server = responder.local_addr().expect("bound");
    tokio::spawn(negotiate_versions(responder));
    let fds = open_fds();
    let start = Memory::now();
    let mut grown = Vec::new();
    for swarm in 0..SWARMS {
        let live = swarm_up(endpoints, server, make).await;
        let up = Memory::now();
        drop(live);
        wait_for_fds(fds).await;
        let after = Memory::now();
        println!(
            "swarm {swarm}, {endpoints} endpoints up: RSS {} MiB above the start, {} MiB after; \
             address space {} MiB above the start",
            up.rss.saturating_sub(start.rss) >> 20,
            after.rss.saturating_sub(start.rss) >> 20,
            up.size.saturating_sub(start.size) >> 20,
        );
        grown.push(Memory {
            size: up.size.saturating_sub(start.size),
            rss: up.rss.saturating_sub(start.rss),
        });
    }
    grown
}

/// Makes `endpoints` endpoints and connects each to `server`; returns them
/// once every one has received the answer.
async fn swarm_up(
    endpoints: usize,
    server: SocketAddr,
    make: fn(SocketAddr) -> io::Result<quinn::Endpoint>,
) -> Vec<quinn::Endpoint> {
    let mut live = Vec::with_capacity(endpoints);
    while live.len() < endpoints {
        let mut connects = JoinSet::new();
        for _ in live.len()..endpoints.min(live.len() + CONNECTS_IN_FLIGHT) {
            let endpoint = make((Ipv4Addr::LOCALHOST, 0).into()).expect("an endpoint");
            live.push(endpoint.clone());
            let opts = ConnectOptions::new(
                server,
                "localhost",
                "ticket",
                ServerVerify::InsecureNoVerify,
            );
            connects.spawn(connect_on(endpoint, opts));
        }
        while let Some(connected) = connects.join_next().await {
            match connected.expect("the connect task") {
                Err(ClientError::Connection(quinn::ConnectionError::VersionMismatch)) => {}
                other => panic!("expected a version mismatch, got {:?}", other.map(|_| ())),
            }
        }
    }
    live
}

/// Answers every long-header packet with a Version Negotiation packet
/// offering only [`NOBODYS_VERSION`] (RFC 9000 §17.2.1).
async fn negotiate_versions(socket: UdpSocket) {
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::with_capacity(64);
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        let Some((dcid, scid)) = long_header_cids(&buf[..n]) else {
            continue;
        };
        out.clear();
        out.push(0x80);
        out.extend_from_slice(&0u32.to_be_bytes());
        for cid in [scid, dcid] {
            out.push(u8::try_from(cid.len()).expect("a long header's CID is at most 255 bytes"));
            out.extend_from_slice(cid);
        }
        out.extend_from_slice(&NOBODYS_VERSION.to_be_bytes());
        let _ = socket.send_to(&out, from).await;
    }
}

/// The destination and source connection ids of a long-header packet.
fn long_header_cids(packet: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = packet.split_first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let rest = rest.get(4..)?; // version
    let (&dcid_len, rest) = rest.split_first()?;
    let (dcid, rest) = rest.split_at_checked(usize::from(dcid_len))?;
    let (&scid_len, rest) = rest.split_first()?;
    let (scid, _) = rest.split_at_checked(usize::from(scid_len))?;
    Some((dcid, scid))
}

/// Waits until the process has at most `fds` descriptors open again: the
/// last swarm's sockets are closed, so their endpoints' state is freed.
async fn wait_for_fds(fds: usize) {
    let deadline = tokio::time::Instant::now() + CLOSE_TIMEOUT;
    while open_fds() > fds {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the endpoints did not close their sockets within {CLOSE_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// The process's address space and resident set, bytes.
#[derive(Clone, Copy, Debug)]
struct Memory {
    size: usize,
    rss: usize,
}

impl Memory {
    fn now() -> Self {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
        let mut pages = statm
            .split_whitespace()
            .map(|p| p.parse::<usize>().expect("statm has page counts") * PAGE_BYTES);
        let mut next = || pages.next().expect("statm has size and resident");
        Self {
            size: next(),
            rss: next(),
        }
    }
}
