//! The attack clients' QUIC configuration: ALPN `lanegate/1`, any
//! certificate accepted, the handshake signature still verified.
//!
//! An attack sends nothing secret, so whom it talks to does not matter;
//! what matters is that the gateway does all the work a real handshake
//! costs it, which a client that skipped the signature check would not
//! change (the server signs either way) but which keeps the client honest.

use std::sync::Arc;
use std::time::Duration;

use lanegate_client::ServerVerify;
use lanegate_common::wire::ALPN;

use super::AttackError;

/// A quinn(-proto) client configuration for attack handshakes. `idle`
/// is the client's idle timeout; `keep_alive` keeps its side of an idle
/// connection from timing out first.
pub fn client_config(
    idle: Duration,
    keep_alive: Option<Duration>,
) -> Result<quinn_proto::ClientConfig, AttackError> {
    let crypto = quinn_proto::crypto::rustls::QuicClientConfig::try_from(rustls_config()?)
        .map_err(|e| AttackError::Quic(e.to_string()))?;
    let mut transport = quinn_proto::TransportConfig::default();
    let idle = quinn_proto::IdleTimeout::try_from(idle)
        .map_err(|_| AttackError::Quic("idle timeout too large for QUIC".into()))?;
    transport
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(keep_alive);
    let mut config = quinn_proto::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

/// The TLS side alone (TLS 1.3, ring, ALPN `lanegate/1`, any certificate
/// but the handshake signature checked: the SDK's
/// [`ServerVerify::InsecureNoVerify`]), for the handshake flood's
/// ClientHellos.
pub fn rustls_config() -> Result<rustls::ClientConfig, AttackError> {
    let mut tls = lanegate_client::verify::tls_config(&ServerVerify::InsecureNoVerify)
        .map_err(|e| AttackError::Quic(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_builds() {
        client_config(Duration::from_secs(60), Some(Duration::from_secs(1))).unwrap();
    }
}
