//! The attack clients' QUIC configuration: ALPN `lanegate/1`, any
//! certificate accepted, the handshake signature still verified.
//!
//! An attack sends nothing secret, so whom it talks to does not matter;
//! what matters is that the gateway does all the work a real handshake
//! costs it, which a client that skipped the signature check would not
//! change (the server signs either way) but which keeps the client honest.

use std::sync::Arc;
use std::time::Duration;

use lanegate_common::wire::ALPN;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

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

/// The TLS side alone (TLS 1.3, ring, ALPN `lanegate/1`, any certificate),
/// for the handshake flood's ClientHellos.
pub fn rustls_config() -> Result<rustls::ClientConfig, AttackError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| AttackError::Quic(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}

/// Trusts every certificate; checks that the server holds its key.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_builds() {
        client_config(Duration::from_secs(60), Some(Duration::from_secs(1))).unwrap();
    }
}
