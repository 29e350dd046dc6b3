//! The SDK against a stand-in gateway on quinn (`support`): handshake,
//! certificate pinning, typed rejections and closes, echo over both
//! transports, and migration to a new socket.

mod support;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use lanegate_client::{
    ClientError, CloseCode, ConnectOptions, Event, Retry, ServerVerify, SessionError, Transport,
    connect,
};
use lanegate_common::ids::{PlayerId, ZoneId};
use support::{
    ASK_PROTOCOL_VIOLATION, ASK_ZONE_RESET, DEFAULT_LANE_LIMITS, EchoServer, SESSION, dev_ticket,
    expired_ticket, full_ticket,
};

#[tokio::test]
async fn connects_with_a_pinned_fingerprint_and_reads_welcome() {
    let server = EchoServer::start();
    let client = connect(server.options(&dev_ticket())).await.unwrap();
    let info = client.info();
    assert_eq!(info.session, SESSION);
    assert_eq!(info.player, PlayerId(7));
    assert_eq!(info.zone, ZoneId(42));
    assert_eq!(info.datagram_message_bytes_max, 1100);
    assert_eq!(info.lane_limits, DEFAULT_LANE_LIMITS);
    client.close().await;
}

#[tokio::test]
async fn a_wrong_fingerprint_fails_the_handshake() {
    let server = EchoServer::start();
    let mut opts = server.options(&dev_ticket());
    let mut pin = server.fingerprint;
    pin[0] ^= 1;
    opts.verify = ServerVerify::Fingerprint(pin);
    let err = connect(opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Connection(quinn::ConnectionError::TransportError(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_pin_parses_from_the_hex_a_gateway_prints() {
    let server = EchoServer::start();
    let printed: Vec<String> = server
        .fingerprint
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let mut opts = server.options(&dev_ticket());
    opts.verify = ServerVerify::fingerprint_hex(&printed.join(":")).unwrap();
    connect(opts).await.unwrap().close().await;
}

#[tokio::test]
async fn ca_roots_from_a_pem_file_verify_a_ca_signed_certificate() {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let server = EchoServer::start_with(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
    );
    let pem = std::env::temp_dir().join(format!("lanegate-client-ca-{}.pem", server.addr.port()));
    std::fs::write(&pem, ca_cert.pem()).unwrap();

    let mut opts = server.options(&dev_ticket());
    opts.verify = ServerVerify::CaRootsPem(pem.clone());
    connect(opts.clone()).await.unwrap().close().await;

    // The same roots refuse a name the certificate does not carry.
    opts.server_name = "gateway.example".to_owned();
    let err = connect(opts).await.unwrap_err();
    assert!(matches!(err, ClientError::Connection(_)), "{err:?}");
    std::fs::remove_file(pem).unwrap();
}

#[tokio::test]
async fn a_bad_ticket_is_rejected_with_a_typed_code() {
    let server = EchoServer::start();
    let err = connect(server.options("not-a-ticket")).await.unwrap_err();
    let ClientError::Rejected(closed) = &err else {
        panic!("expected a rejection, got {err:?}")
    };
    assert_eq!(closed.code, CloseCode::BadTicket);
    assert_eq!(closed.advice(), Retry::NewTicket);
    assert_eq!(err.closed(), Some(closed));
}

#[tokio::test]
async fn an_expired_ticket_is_rejected_as_expired() {
    let server = EchoServer::start();
    let err = connect(server.options(&expired_ticket()))
        .await
        .unwrap_err();
    assert_eq!(
        err.closed().map(|c| (c.code, c.advice())),
        Some((CloseCode::TicketExpired, Retry::NewTicket)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_close_code_without_reject_is_still_typed() {
    let server = EchoServer::start();
    let err = connect(server.options(&full_ticket())).await.unwrap_err();
    let ClientError::Closed(closed) = &err else {
        panic!("expected a typed close, got {err:?}")
    };
    assert_eq!(closed.code, CloseCode::ServerFull);
    assert_eq!(closed.advice(), Retry::Backoff);
}

#[tokio::test]
async fn a_silent_server_times_out_the_handshake() {
    // A bound UDP socket that never answers: the QUIC handshake stalls.
    let silent = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut opts = ConnectOptions::new(
        silent.local_addr().unwrap(),
        "localhost",
        dev_ticket(),
        ServerVerify::InsecureNoVerify,
    );
    opts.handshake_timeout = Duration::from_millis(200);
    let err = connect(opts).await.unwrap_err();
    assert!(matches!(err, ClientError::Timeout(..)), "{err:?}");
}

#[tokio::test]
async fn echo_over_a_datagram() {
    let server = EchoServer::start();
    let mut client = connect(server.options(&dev_ticket())).await.unwrap();
    client
        .send(0x1fff, b"ping", Transport::Datagram)
        .await
        .unwrap();
    assert_eq!(
        client.recv().await.unwrap(),
        Event::Message {
            ty: 0x1fff,
            payload: b"ping".to_vec(),
            transport: Transport::Datagram
        }
    );
    client.close().await;
}

#[tokio::test]
async fn echo_over_the_control_stream_in_order() {
    let server = EchoServer::start();
    let mut client = connect(server.options(&dev_ticket())).await.unwrap();
    for i in 0u8..5 {
        client
            .send(0x2000 + u16::from(i), &[i; 300], Transport::Stream)
            .await
            .unwrap();
    }
    for i in 0u8..5 {
        assert_eq!(
            client.recv().await.unwrap(),
            Event::Message {
                ty: 0x2000 + u16::from(i),
                payload: vec![i; 300],
                transport: Transport::Stream
            }
        );
    }
    client.close().await;
}

#[tokio::test]
async fn zone_reset_arrives_before_the_message_that_follows_it() {
    let server = EchoServer::start();
    let mut client = connect(server.options(&dev_ticket())).await.unwrap();
    client
        .send(ASK_ZONE_RESET, b"", Transport::Stream)
        .await
        .unwrap();
    assert_eq!(client.recv().await.unwrap(), Event::ZoneReset(ZoneId(42)));
    assert!(matches!(
        client.recv().await.unwrap(),
        Event::Message {
            ty: ASK_ZONE_RESET,
            ..
        }
    ));
    client.close().await;
}

#[tokio::test]
async fn welcome_limits_are_enforced_before_sending() {
    let server = EchoServer::start();
    let mut client = connect(server.options(&dev_ticket())).await.unwrap();
    let err = client
        .send(0x1000, &[0; 1099], Transport::Datagram)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Session(SessionError::TooLarge { max: 1100, .. })
        ),
        "{err:?}"
    );
    let err = client
        .send(0x0004, b"", Transport::Stream)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Session(SessionError::ControlType(4))),
        "{err:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn server_draining_surfaces_as_a_typed_close_from_recv_and_send() {
    let server = EchoServer::start();
    let mut client = connect(server.options(&dev_ticket())).await.unwrap();
    server.close_all(CloseCode::ServerDraining);

    let err = client.recv().await.unwrap_err();
    let ClientError::Closed(closed) = &err else {
        panic!("expected a typed close, got {err:?}")
    };
    assert_eq!(closed.code, CloseCode::ServerDraining);
    assert_eq!(closed.advice(), Retry::Now);

    // Every later call says the same.
    let err = client
        .send(0x1fff, b"", Transport::Datagram)
        .await
        .unwrap_err();
    assert_eq!(
        err.closed().map(|c| c.code),
        Some(CloseCode::ServerDraining)
    );
    let err = client.recv().await.unwrap_err();
    assert_eq!(
        err.closed().map(|c| c.code),
        Some(CloseCode::ServerDraining)
    );
}

#[tokio::test]
async fn the_session_survives_a_rebind_to_a_new_socket() {
    let server = EchoServer::start();
    let mut client = connect(server.options(&dev_ticket())).await.unwrap();
    let before = client.local_addr().unwrap();
    client
        .rebind(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap())
        .unwrap();
    assert_ne!(client.local_addr().unwrap().port(), before.port());

    // Reliable, so the migration's path validation cannot lose it.
    client
        .send(0x2fff, b"moved", Transport::Stream)
        .await
        .unwrap();
    assert_eq!(
        client.recv().await.unwrap(),
        Event::Message {
            ty: 0x2fff,
            payload: b"moved".to_vec(),
            transport: Transport::Stream
        }
    );
    client.close().await;
}

#[tokio::test]
async fn close_leaves_with_no_error() {
    let server = EchoServer::start();
    let client = connect(server.options(&dev_ticket())).await.unwrap();
    client.close().await;
    assert_eq!(
        server.next_client_close().await,
        Some(u64::from(CloseCode::NoError.code()))
    );
}

#[tokio::test]
async fn a_gateway_breaking_the_protocol_is_closed_with_protocol_violation() {
    let server = EchoServer::start();
    let mut client = connect(server.options(&dev_ticket())).await.unwrap();
    client
        .send(ASK_PROTOCOL_VIOLATION, b"", Transport::Stream)
        .await
        .unwrap();
    let err = client.recv().await.unwrap_err();
    assert!(
        matches!(err, ClientError::Session(SessionError::Protocol(_))),
        "{err:?}"
    );
    assert_eq!(
        server.next_client_close().await,
        Some(u64::from(CloseCode::ProtocolViolation.code()))
    );
}

#[tokio::test]
async fn keep_alive_holds_an_idle_session_open() {
    let server = EchoServer::start();
    let mut opts = server.options(&dev_ticket());
    opts.idle_timeout = Duration::from_millis(600);
    opts.keep_alive = Duration::from_millis(150);
    let mut client = connect(opts).await.unwrap();
    // Silence for longer than the idle timeout: this sleep is the test's
    // subject, not a synchronisation.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client
        .send(0x1fff, b"still here", Transport::Stream)
        .await
        .unwrap();
    assert!(matches!(
        client.recv().await.unwrap(),
        Event::Message { ty: 0x1fff, .. }
    ));
    client.close().await;
}
