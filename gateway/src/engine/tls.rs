//! TLS identity and the QUIC server configuration every gateway core shares.
//!
//! The identity is a certificate chain and key from PEM files
//! (`gateway.cert_file` / `gateway.key_file`), or, when neither is set, a
//! self-signed certificate made at start for `localhost`. Clients of a
//! development gateway pin its [`fingerprint_sha256`] instead of disabling
//! verification (`docs/protocol.md` §1).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lanegate_common::config::GatewayConfig;
use lanegate_common::wire::ALPN;
use quinn_proto::crypto::rustls::QuicServerConfig;
use quinn_proto::{IdleTimeout, TransportConfig, VarInt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use super::EngineError;

/// The self-signed certificate and its key, in the state directory.
pub const SELF_SIGNED_FILE: &str = "self-signed.pem";

/// Connection attempts quinn may hold before the engine settles them (it
/// settles each at once; a few spare).
const INCOMING_MAX: usize = 16;
/// Bytes of later packets quinn may buffer for one such attempt: a
/// client's whole first flight.
const INCOMING_BUFFER_BYTES: u64 = 16 * 1024;

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The chain, leaf first (DER).
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (DER).
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Loads the identity the configuration names, or makes a self-signed one
    /// when it names none.
    pub fn from_config(gateway: &GatewayConfig) -> Result<Self, EngineError> {
        match (&gateway.cert_file, &gateway.key_file) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| EngineError::Pem {
                        path: cert.display().to_string(),
                        message: e.to_string(),
                    })?;
                if chain.is_empty() {
                    return Err(EngineError::Pem {
                        path: cert.display().to_string(),
                        message: "no certificate in the file".to_owned(),
                    });
                }
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| EngineError::Pem {
                    path: key.display().to_string(),
                    message: e.to_string(),
                })?;
                Ok(Self { chain, key })
            }
            (None, None) => Self::self_signed(),
            _ => Err(EngineError::CertKeyPair),
        }
    }

    /// The self-signed certificate kept in `dir`, made (and written there,
    /// readable by the owner only) if `dir` holds none yet, so that it and
    /// its fingerprint survive restarts. A file that does not parse is
    /// replaced. Certificate and key share one file, replaced in one
    /// rename, so two gateways starting at once cannot leave a mismatched
    /// pair.
    pub fn self_signed_in(dir: &Path) -> Result<Self, EngineError> {
        let path = dir.join(SELF_SIGNED_FILE);
        let chain = CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>());
        if let (Ok(chain), Ok(key)) = (chain, PrivateKeyDer::from_pem_file(&path))
            && !chain.is_empty()
        {
            return Ok(Self { chain, key });
        }
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| EngineError::SelfSigned(e.to_string()))?;
        let io_error = |path: &Path, e: std::io::Error| EngineError::Pem {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let pem = certified.cert.pem() + &certified.signing_key.serialize_pem();
        write_atomically(&path, pem.as_bytes(), 0o600).map_err(|e| io_error(&path, e))?;
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        Ok(Self {
            chain: vec![certified.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key),
        })
    }

    /// A fresh self-signed certificate for `localhost` (ECDSA P-256).
    pub fn self_signed() -> Result<Self, EngineError> {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map_err(|e| EngineError::SelfSigned(e.to_string()))?;
        let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
        Ok(Self {
            chain: vec![certified.cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key),
        })
    }

    /// The leaf certificate (DER).
    pub fn leaf(&self) -> &CertificateDer<'static> {
        // `from_config` refuses an empty chain and `self_signed` makes one.
        &self.chain[0]
    }

    /// [`fingerprint_sha256`] of the leaf certificate.
    pub fn fingerprint(&self) -> String {
        fingerprint_sha256(self.leaf())
    }
}

/// Writes `bytes` to a temporary file beside `path` with `mode`, then
/// renames it over `path`: a gateway starting at the same moment reads the
/// old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// SHA-256 over the DER certificate, as lowercase hex byte pairs separated by
/// colons (`ab:01:...`, 95 characters), the form `openssl x509 -fingerprint
/// -sha256` prints (in lowercase), as `docs/protocol.md` §1 specifies.
/// Compare case-insensitively.
pub fn fingerprint_sha256(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The rustls configuration: TLS 1.3 only (QUIC requires it), ALPN
/// `lanegate/1` only, no client certificates, no 0-RTT (a replayed `Hello`
/// would be a second session from one ticket).
pub fn rustls_server_config(identity: &Identity) -> Result<rustls::ServerConfig, EngineError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| EngineError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(identity.chain.clone(), identity.key.clone_key())
        .map_err(|e| EngineError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.max_early_data_size = 0;
    Ok(config)
}

/// The QUIC transport parameters of a gateway connection.
pub fn transport_config(gateway: &GatewayConfig) -> Result<TransportConfig, EngineError> {
    let mut transport = TransportConfig::default();
    // Config's idle timeout (10 s by default): silence that long means the
    // client is gone; it bounds how long dead sessions hold a slot.
    let idle_ms = VarInt::from_u64(gateway.idle_timeout_ms).map_err(|_| {
        EngineError::Config("gateway.idle_timeout_ms is beyond QUIC's varint range".to_owned())
    })?;
    transport.max_idle_timeout(Some(IdleTimeout::from(idle_ms)));
    // One bidirectional stream: the control stream (`docs/protocol.md` §4).
    // A second one is never legitimate, so QUIC itself refuses it.
    transport.max_concurrent_bidi_streams(VarInt::from_u32(1));
    // Unidirectional streams: one per lane by default, so reliable messages
    // of different lanes do not block each other, and no more (each costs a
    // frame buffer of `stream_message_bytes_max`; at most the session's
    // frame readers, checked at config load).
    transport.max_concurrent_uni_streams(VarInt::from_u32(gateway.uni_streams_max));
    // Datagrams are required; buffer a few on receive (the engine drains
    // them on every packet). Advertising a buffer is what sends the
    // `max_datagram_frame_size` transport parameter.
    transport.datagram_receive_buffer_size(Some(gateway.datagram_receive_buffer_bytes));
    // The same on send: replies to a burst wait briefly for congestion
    // window; the lanes share the buffer (`egress.rs`), and past a lane's
    // share its datagrams are dropped (stale game state).
    transport.datagram_send_buffer_size(gateway.datagram_send_buffer_bytes);
    // Per-stream receive window: one largest message plus its length prefix,
    // twice, so a sender can keep a message in flight while one is read.
    let window =
        u32::try_from(gateway.stream_message_bytes_max.saturating_mul(2) + 16).unwrap_or(u32::MAX);
    transport.stream_receive_window(VarInt::from_u32(window));
    // The connection's window over all streams together: without it
    // (quinn's default is unlimited) a peer leaving gaps in every stream
    // could make it hold every stream's window at once (`docs/memory.md`).
    let connection = VarInt::from_u64(gateway.connection_receive_window_bytes).map_err(|_| {
        EngineError::Config(
            "gateway.connection_receive_window_bytes is beyond QUIC's varint range".to_owned(),
        )
    })?;
    transport.receive_window(connection);
    // Stream data sent and not yet acknowledged, all streams together
    // (the lanes share it, `egress.rs`).
    transport.send_window(gateway.stream_send_window_bytes());
    // Game clients send input many times a second; a keep-alive from the
    // server side only matters for silent clients, which the client pings.
    transport.keep_alive_interval(None::<Duration>);
    Ok(transport)
}

/// The `quinn_proto` server configuration: TLS from [`rustls_server_config`]
/// and transport from [`transport_config`]. Migration stays on (clients keep
/// their session across NAT rebinding, `docs/protocol.md` §1).
pub fn quic_server_config(
    identity: &Identity,
    gateway: &GatewayConfig,
) -> Result<Arc<quinn_proto::ServerConfig>, EngineError> {
    let tls = rustls_server_config(identity)?;
    let quic = QuicServerConfig::try_from(tls).map_err(|e| EngineError::Tls(e.to_string()))?;
    let mut server = quinn_proto::ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(Arc::new(transport_config(gateway)?));
    server.migration(true);
    // The engine settles every connection attempt (accept, Retry, refuse or
    // ignore) in the call that reported it (`connection.rs`
    // `on_incoming`), so quinn never holds more than one; its defaults
    // (65 536 pending, 10 MiB buffered each, 100 MiB in all) would let a
    // slower application queue that much. Pending handshakes once accepted
    // are bounded by `gateway.unvalidated_connections_max` and
    // `gateway.handshake_timeout_ms`.
    server.max_incoming(INCOMING_MAX);
    server.incoming_buffer_size(INCOMING_BUFFER_BYTES);
    server.incoming_buffer_size_total(INCOMING_BUFFER_BYTES * INCOMING_MAX as u64);
    Ok(Arc::new(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_the_documented_format() {
        // `docs/protocol.md` §12, vectors `fingerprint-input` and
        // `fingerprint-text`.
        assert_eq!(
            fingerprint_sha256(b"abc"),
            "ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:b0:03:61:a3:96:17:7a:9c:b4:10:ff:61:f2:00:15:ad"
        );
    }

    #[test]
    fn self_signed_identity_builds_a_server_config() {
        let id = Identity::self_signed().unwrap();
        assert_eq!(id.fingerprint().len(), 95);
        let cfg = rustls_server_config(&id).unwrap();
        assert_eq!(cfg.alpn_protocols, vec![ALPN.to_vec()]);
        quic_server_config(&id, &GatewayConfig::default()).unwrap();
    }

    #[test]
    fn a_self_signed_identity_in_a_state_dir_survives_restarts() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("lanegate-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Identity::self_signed_in(&dir).unwrap();
        let again = Identity::self_signed_in(&dir).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        quic_server_config(&again, &GatewayConfig::default()).unwrap();
        let file = dir.join(SELF_SIGNED_FILE);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
        // A damaged file is replaced, not fatal.
        std::fs::write(&file, "not pem").unwrap();
        let fresh = Identity::self_signed_in(&dir).unwrap();
        assert_ne!(fresh.fingerprint(), first.fingerprint());
        assert_eq!(
            Identity::self_signed_in(&dir).unwrap().fingerprint(),
            fresh.fingerprint()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cert_without_key_is_refused() {
        let gw = GatewayConfig {
            cert_file: Some("/nonexistent.pem".into()),
            ..GatewayConfig::default()
        };
        assert!(matches!(
            Identity::from_config(&gw),
            Err(EngineError::CertKeyPair)
        ));
    }

    #[test]
    fn pem_files_load() {
        let id = Identity::self_signed().unwrap();
        let dir = std::env::temp_dir().join(format!("lanegate-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("c.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("k.pem"), cert.signing_key.serialize_pem()).unwrap();
        let gw = GatewayConfig {
            cert_file: Some(dir.join("c.pem")),
            key_file: Some(dir.join("k.pem")),
            ..GatewayConfig::default()
        };
        let loaded = Identity::from_config(&gw).unwrap();
        assert_eq!(loaded.leaf().as_ref(), cert.cert.der().as_ref());
        assert_ne!(loaded.fingerprint(), id.fingerprint());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
