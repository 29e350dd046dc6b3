//! How the client decides to trust the gateway's certificate.
//!
//! Production gateways present a certificate from a CA the client trusts
//! ([`ServerVerify::CaRoots`], [`ServerVerify::CaRootsPem`]). Development
//! gateways generate a self-signed certificate at start and print the SHA-256
//! of its DER encoding; the client pins it ([`ServerVerify::Fingerprint`]),
//! as `docs/protocol.md` §1 recommends over disabling verification. Whatever
//! the mode, the handshake signature is still checked, so the peer must hold
//! the certificate's private key.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ClientError;

/// Bytes of a SHA-256 certificate fingerprint.
pub const FINGERPRINT_BYTES: usize = 32;

/// How to verify the gateway's certificate.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ServerVerify {
    /// Pin the SHA-256 of the gateway's DER end-entity certificate (what a
    /// development gateway prints at start). Names and expiry are not
    /// checked: the pin is the whole trust decision.
    Fingerprint([u8; FINGERPRINT_BYTES]),
    /// Verify the chain and the server name against these roots.
    CaRoots(RootCertStore),
    /// As [`ServerVerify::CaRoots`], with the roots read from a PEM file.
    CaRootsPem(PathBuf),
    /// Accept any certificate. For development only: anyone on the path can
    /// impersonate the gateway. Prefer [`ServerVerify::Fingerprint`].
    InsecureNoVerify,
}

impl ServerVerify {
    /// A pin from its hex text, as a gateway prints it; `:` separators and
    /// whitespace are ignored, either case is accepted.
    pub fn fingerprint_hex(text: &str) -> Result<Self, ClientError> {
        let digits: String = text
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        let bytes = hex::decode(&digits).map_err(|e| ClientError::Config {
            field: "verify",
            reason: format!("fingerprint is not hex: {e}"),
        })?;
        let pin: [u8; FINGERPRINT_BYTES] =
            bytes.try_into().map_err(|b: Vec<u8>| ClientError::Config {
                field: "verify",
                reason: format!(
                    "fingerprint is {} bytes; SHA-256 is {FINGERPRINT_BYTES}",
                    b.len()
                ),
            })?;
        Ok(ServerVerify::Fingerprint(pin))
    }
}

/// The SHA-256 fingerprint of a DER certificate, as [`ServerVerify::Fingerprint`]
/// expects it.
pub fn fingerprint(cert_der: &[u8]) -> [u8; FINGERPRINT_BYTES] {
    Sha256::digest(cert_der).into()
}

/// The rustls client configuration for `verify` (TLS 1.3 only, ring),
/// without ALPN: [`crate::connect`] adds `lanegate/1`, as must any other
/// user (the bots' attack clients build their QUIC from it).
pub fn tls_config(verify: &ServerVerify) -> Result<rustls::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(ClientError::Tls)?;
    let config = match verify {
        ServerVerify::Fingerprint(pin) => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SignatureOnlyVerifier {
                    pin: Some(*pin),
                    algorithms: provider.signature_verification_algorithms,
                }))
        }
        ServerVerify::InsecureNoVerify => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SignatureOnlyVerifier {
                    pin: None,
                    algorithms: provider.signature_verification_algorithms,
                }))
        }
        ServerVerify::CaRoots(roots) => builder.with_root_certificates(roots.clone()),
        ServerVerify::CaRootsPem(path) => builder.with_root_certificates(read_roots(path)?),
    };
    Ok(config.with_no_client_auth())
}

fn read_roots(path: &std::path::Path) -> Result<RootCertStore, ClientError> {
    let bad = |reason: String| ClientError::Config {
        field: "verify",
        reason: format!("CA roots {}: {reason}", path.display()),
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(roots)
}

/// Checks the handshake signature with the end-entity key, and the pin if
/// there is one; no chain, name or expiry checks.
#[derive(Debug)]
struct SignatureOnlyVerifier {
    /// `None` accepts any certificate ([`ServerVerify::InsecureNoVerify`]).
    pin: Option<[u8; FINGERPRINT_BYTES]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SignatureOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) if bool::from(fingerprint(end_entity).ct_eq(pin)) => {
                Ok(ServerCertVerified::assertion())
            }
            Some(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
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
    fn fingerprint_hex_accepts_colons_and_case() {
        let hex_text = "AB:".repeat(31) + "ab";
        let ServerVerify::Fingerprint(pin) = ServerVerify::fingerprint_hex(&hex_text).unwrap()
        else {
            panic!("expected a pin")
        };
        assert_eq!(pin, [0xab; 32]);
    }

    #[test]
    fn fingerprint_hex_refuses_wrong_length_and_non_hex() {
        assert!(matches!(
            ServerVerify::fingerprint_hex("abcd"),
            Err(ClientError::Config { .. })
        ));
        assert!(matches!(
            ServerVerify::fingerprint_hex(&"zz".repeat(32)),
            Err(ClientError::Config { .. })
        ));
    }
}
