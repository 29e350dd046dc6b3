//! Anti-amplification (RFC 9000 §8.1; `docs/protocol.md` §8): before a
//! client's address is validated the gateway sends it at most three times
//! the bytes it received, however large its certificate chain. One
//! minimal (1200-byte) Initial from an address that never answers, a
//! chain far larger than three of them, and every timer run for long
//! after.

// `allow-unwrap-in-tests` covers `#[test]` functions only.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use lanegate_common::config::Config;
use lanegate_common::ids::CoreId;
use lanegate_common::ticket::KeySet;
use lanegate_gateway::engine::tls::{Identity, quic_server_config};
use lanegate_gateway::engine::{AdmitAll, Engine, EngineParams};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use support::{Client, ConnectOpts, UNIX_NOW, links, shard_config, ticket};

/// A leaf followed by `intermediates` certificates of about 2.5 KB each
/// (many names), as a chain through a long PKI would be.
fn big_chain(intermediates: usize) -> Identity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut chain = vec![leaf.der().clone()];
    for i in 0..intermediates {
        let names: Vec<String> = (0..100)
            .map(|n| format!("intermediate-{i}-{n}.example"))
            .collect();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .self_signed(&other)
            .unwrap();
        chain.push(CertificateDer::from(cert.der().to_vec()));
    }
    Identity {
        chain,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

#[test]
fn before_validation_the_gateway_sends_at_most_three_times_what_it_received() {
    let identity = big_chain(4);
    let chain_bytes: usize = identity.chain.iter().map(|c| c.len()).sum();
    assert!(chain_bytes > 3 * 1200 * 2, "chain of {chain_bytes} bytes");
    let mut config = Config::default();
    // Retry would validate first; this is the accepting path.
    config.gateway.retry_above_handshakes_per_s = u32::MAX;
    let server = quic_server_config(&identity, &config.gateway).unwrap();
    let mut params = EngineParams::from_config(&config, CoreId(0), 1, KeySet::dev()).unwrap();
    params.seed = Some(5);
    let mut now = std::time::Instant::now();
    let mut engine = Engine::new(params, server, AdmitAll, now, UNIX_NOW).unwrap();
    let (mut port, _shard) = links(&shard_config(&config), now);

    let mut client = Client::new(now, identity.leaf(), 0, &ticket(1), ConnectOpts::default());
    let mut initial = Vec::new();
    let t = client.conn.poll_transmit(now, 1, &mut initial).unwrap();
    initial.truncate(t.size);
    assert_eq!(initial.len(), 1200, "a minimal Initial");
    let victim = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), 40_000);
    engine.handle_datagram(now, victim, None, None, &initial, &mut port);

    let mut sent = 0;
    let mut buf = Vec::new();
    let end = now + Duration::from_secs(30);
    while now < end {
        while let Some(t) = engine.poll_transmit(now, 10, &mut buf) {
            assert_eq!(t.destination, victim);
            sent += t.size;
        }
        match engine.next_timeout() {
            Some(t) if t <= end => {
                now = t.max(now);
                engine.handle_timeouts(now, &mut port);
            }
            _ => break,
        }
    }
    assert!(
        sent <= 3 * initial.len(),
        "{sent} bytes sent for {} received",
        initial.len()
    );
    // The limit was what held the server back: it sent its first flight
    // up to the limit, and its chain alone is larger.
    assert!(sent >= 2 * initial.len(), "only {sent} bytes sent");
    assert_eq!(engine.connections_open(), 0, "the handshake timed out");
}
