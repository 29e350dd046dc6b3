//! QUIC v1 client Initials made by hand, cheaply: one TLS ClientHello
//! sealed again and again under fresh destination connection ids.
//!
//! **Why.** The first flood made every Initial with quinn-proto's client
//! `connect`: a new TLS session, key share and all, about 67 µs of CPU
//! each, so 12 000 a second took 0.8 of a core from a host the gateway
//! shares, which made the gateway look worse than it is. The server's
//! cost does not depend on the ClientHello being new: a fresh destination
//! connection id means fresh Initial keys (RFC 9001 §5.2), so the server
//! must derive them, decrypt the packet and then either answer with a
//! Retry or start a connection and a TLS handshake of its own. So a
//! [`Template`] builds one ClientHello (with rustls, as a client would,
//! including the transport parameters quinn-proto requires) and
//! [`Template::seal`] wraps it into a 1200-byte Initial under a new random
//! destination id: an HKDF, one AES-GCM seal and one header-protection
//! block, a few µs. A new ClientHello (new random, new key share) is made
//! every [`HELLO_REUSE_MAX`] Initials anyway.
//!
//! **The packet** (RFC 9000 §17.2.2): `0xc3`, version 1, a 16-byte
//! destination id, the template's 8-byte source id, an empty token, a
//! two-byte length, a four-byte packet number 0, then a CRYPTO frame with
//! the ClientHello and PADDING up to 1200 bytes with the AEAD tag.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use rustls::Side;
use rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
use rustls::quic::{Keys, Version};

use super::{AttackError, tls};

/// Initials sealed around one ClientHello before a new one is made.
pub const HELLO_REUSE_MAX: u32 = 1024;
/// The size of every Initial: the least a client must pad to (RFC 9000
/// §14.1), which is also what quinn sends.
pub const INITIAL_BYTES: usize = 1200;
/// Long header, type Initial, a four-byte packet number.
const FIRST_BYTE: u8 = 0xc3;
const DCID_LEN: u8 = 16;
const SCID_LEN: u8 = 8;
const DCID_BYTES: usize = DCID_LEN as usize;
const SCID_BYTES: usize = SCID_LEN as usize;
const PN_BYTES: usize = 4;
const TAG_BYTES: usize = 16;
/// Header up to and including the packet number.
const HEADER_BYTES: usize = 1 + 4 + 1 + DCID_BYTES + 1 + SCID_BYTES + 1 + 2 + PN_BYTES;
const PAYLOAD_BYTES: usize = INITIAL_BYTES - HEADER_BYTES - TAG_BYTES;

/// One ClientHello and what it takes to seal it into Initials.
pub struct Template {
    tls: Arc<rustls::ClientConfig>,
    server_name: rustls::pki_types::ServerName<'static>,
    suite: &'static rustls::Tls13CipherSuite,
    quic: &'static dyn rustls::quic::Algorithm,
    rng: SmallRng,
    scid: [u8; SCID_BYTES],
    /// The CRYPTO frame and its padding: the plaintext of every Initial.
    plaintext: Vec<u8>,
    uses: u32,
}

impl Template {
    /// A template for `server_name`.
    pub fn new(server_name: &str) -> Result<Self, AttackError> {
        let suite = TLS13_AES_128_GCM_SHA256
            .tls13()
            .ok_or_else(|| AttackError::Quic("the Initial suite is TLS 1.3".into()))?;
        let quic = suite
            .quic
            .ok_or_else(|| AttackError::Quic("the Initial suite has QUIC keys".into()))?;
        let server_name =
            rustls::pki_types::ServerName::try_from(server_name.to_owned()).map_err(|e| {
                AttackError::Config {
                    field: "server_name",
                    reason: e.to_string(),
                }
            })?;
        let mut template = Self {
            tls: Arc::new(tls::rustls_config()?),
            server_name,
            suite,
            quic,
            rng: SmallRng::from_os_rng(),
            scid: [0; SCID_BYTES],
            plaintext: Vec::with_capacity(PAYLOAD_BYTES),
            uses: 0,
        };
        template.new_hello()?;
        Ok(template)
    }

    /// A fresh Initial into `out` (cleared first): always
    /// [`INITIAL_BYTES`] long.
    pub fn seal(&mut self, out: &mut Vec<u8>) -> Result<(), AttackError> {
        if self.uses >= HELLO_REUSE_MAX {
            self.new_hello()?;
        }
        self.uses += 1;
        let mut dcid = [0u8; DCID_BYTES];
        self.rng.fill_bytes(&mut dcid);
        let keys = Keys::initial(Version::V1, self.suite, self.quic, &dcid, Side::Client);
        out.clear();
        out.push(FIRST_BYTE);
        out.extend_from_slice(&1u32.to_be_bytes());
        out.push(DCID_LEN);
        out.extend_from_slice(&dcid);
        out.push(SCID_LEN);
        out.extend_from_slice(&self.scid);
        out.push(0); // no token
        let length =
            u16::try_from(PN_BYTES + PAYLOAD_BYTES + TAG_BYTES).expect("a constant under 16 KiB");
        out.extend_from_slice(&(0x4000 | length).to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        debug_assert_eq!(out.len(), HEADER_BYTES);
        out.extend_from_slice(&self.plaintext);
        let (header, payload) = out.split_at_mut(HEADER_BYTES);
        let tag = keys
            .local
            .packet
            .encrypt_in_place(0, header, payload)
            .map_err(|e| AttackError::Quic(e.to_string()))?;
        out.extend_from_slice(tag.as_ref());
        let mut sample = [0u8; 16];
        let at = HEADER_BYTES - PN_BYTES + 4;
        sample.copy_from_slice(&out[at..at + 16]);
        let (first, rest) = out.split_at_mut(1);
        let pn = &mut rest[HEADER_BYTES - PN_BYTES - 1..HEADER_BYTES - 1];
        keys.local
            .header
            .encrypt_in_place(&sample, &mut first[0], pn)
            .map_err(|e| AttackError::Quic(e.to_string()))?;
        Ok(())
    }

    /// A new source id and ClientHello, as a new client would have.
    fn new_hello(&mut self) -> Result<(), AttackError> {
        self.rng.fill_bytes(&mut self.scid);
        let mut conn = rustls::quic::ClientConnection::new(
            self.tls.clone(),
            Version::V1,
            self.server_name.clone(),
            transport_parameters(&self.scid),
        )
        .map_err(|e| AttackError::Quic(e.to_string()))?;
        let mut hello = Vec::new();
        conn.write_hs(&mut hello);
        let len = u16::try_from(hello.len())
            .ok()
            .filter(|&l| usize::from(l) + 4 <= PAYLOAD_BYTES)
            .ok_or_else(|| AttackError::Quic(format!("a {}-byte ClientHello", hello.len())))?;
        self.plaintext.clear();
        // CRYPTO frame: type, offset 0, two-byte length, data; then PADDING.
        self.plaintext.extend_from_slice(&[0x06, 0x00]);
        self.plaintext
            .extend_from_slice(&(0x4000 | len).to_be_bytes());
        self.plaintext.extend_from_slice(&hello);
        self.plaintext.resize(PAYLOAD_BYTES, 0);
        self.uses = 0;
        Ok(())
    }
}

/// The client's transport parameters (RFC 9000 §18.2): the source id the
/// server checks against the packet's, datagrams on (the gateway needs
/// them), a 30 s idle timeout and windows like quinn's defaults.
fn transport_parameters(scid: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0x0f, SCID_LEN]); // initial_source_connection_id
    out.extend_from_slice(scid);
    for (id, value) in [
        (0x01, 30_000),    // max_idle_timeout, ms
        (0x04, 1_250_000), // initial_max_data
        (0x05, 1_250_000), // initial_max_stream_data_bidi_local
        (0x06, 1_250_000), // initial_max_stream_data_bidi_remote
        (0x07, 1_250_000), // initial_max_stream_data_uni
        (0x08, 100),       // initial_max_streams_bidi
        (0x09, 100),       // initial_max_streams_uni
        (0x20, 65_535),    // max_datagram_frame_size
    ] {
        let value = varint(value);
        out.push(id);
        out.push(u8::try_from(value.len()).expect("at most 4 bytes"));
        out.extend_from_slice(&value);
    }
    out
}

/// `v` as a QUIC variable-length integer, in its shortest form (peers may
/// refuse a longer one in transport parameters, and quinn does).
fn varint(v: u32) -> Vec<u8> {
    match v {
        0..=0x3f => vec![v.to_be_bytes()[3]],
        0x40..=0x3fff => (0x4000 | v).to_be_bytes()[2..].to_vec(),
        _ => (0x8000_0000 | (v & 0x3fff_ffff)).to_be_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use quinn_proto::{DatagramEvent, EndpointConfig, ServerConfig};

    use super::*;

    fn server() -> quinn_proto::Endpoint {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        tls.alpn_protocols = vec![lanegate_common::wire::ALPN.to_vec()];
        let crypto = quinn_proto::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
        let config = ServerConfig::with_crypto(Arc::new(crypto));
        quinn_proto::Endpoint::new(
            Arc::new(EndpointConfig::default()),
            Some(Arc::new(config)),
            false,
            None,
        )
    }

    #[test]
    fn a_quic_server_takes_each_sealed_initial_as_a_new_connection() {
        let mut endpoint = server();
        let mut template = Template::new("localhost").unwrap();
        let (mut out, mut reply) = (Vec::new(), Vec::new());
        let from: SocketAddr = "127.0.0.2:5555".parse().unwrap();
        let now = Instant::now();
        let mut dcids = std::collections::HashSet::new();
        for _ in 0..3 {
            template.seal(&mut out).unwrap();
            assert_eq!(out.len(), INITIAL_BYTES);
            dcids.insert(out[6..6 + DCID_BYTES].to_vec());
            let event = endpoint.handle(now, from, None, None, out.as_slice().into(), &mut reply);
            let Some(DatagramEvent::NewConnection(incoming)) = event else {
                panic!("the server did not take the Initial as a new connection");
            };
            // Accepting it runs the server's TLS on the ClientHello.
            let (_, mut conn) = endpoint.accept(incoming, now, &mut reply, None).unwrap();
            reply.clear();
            assert!(
                conn.poll_transmit(now, 1, &mut reply).is_some(),
                "the server answers"
            );
        }
        assert_eq!(dcids.len(), 3, "every Initial has its own id");
    }

    #[test]
    fn varints_take_their_shortest_form() {
        assert_eq!(varint(37), [0x25]);
        assert_eq!(varint(15_293), [0x7b, 0xbd]);
        assert_eq!(varint(494_878_333), [0x9d, 0x7f, 0x3e, 0x7d]);
    }

    #[test]
    fn the_client_hello_is_renewed_after_its_reuses() {
        let mut template = Template::new("localhost").unwrap();
        let first = template.plaintext.clone();
        let mut out = Vec::new();
        for _ in 0..HELLO_REUSE_MAX + 1 {
            template.seal(&mut out).unwrap();
        }
        assert_ne!(template.plaintext, first);
        assert_eq!(template.uses, 1);
    }
}
