//! The client's `max_datagram_frame_size` transport parameter (RFC 9221
//! §3, id `0x20`), read as the client sent it: the protocol requires at
//! least [`DATAGRAM_FRAME_SIZE_MIN`] (`docs/protocol.md` §1).
//!
//! quinn-proto keeps the peer's parameters private and exposes only
//! `Datagrams::max_size`, which is already capped by the path's MTU: at the
//! 1200-byte initial MTU a client offering 1199 and one offering 65535 look
//! the same. So the engine re-encodes the parameters the TLS session
//! carried (`TransportParameters::write`, RFC 9000 §18: id, length, value,
//! each id and length a varint) and reads the one it needs. Once per
//! handshake, never per packet.

use lanegate_common::frame::get_varint;
use quinn_proto::Connection;

/// Smallest `max_datagram_frame_size` a client may offer: a DATAGRAM frame
/// that fills the smallest QUIC packet every path carries.
pub const DATAGRAM_FRAME_SIZE_MIN: u64 = 1200;

/// The transport parameter id of `max_datagram_frame_size`.
const MAX_DATAGRAM_FRAME_SIZE: u64 = 0x20;

/// The client's `max_datagram_frame_size`, `None` if it sent none (or its
/// parameters are not available yet, which after the handshake they are).
/// `scratch` holds the re-encoded parameters; it is cleared first.
pub fn max_datagram_frame_size(conn: &Connection, scratch: &mut Vec<u8>) -> Option<u64> {
    let params = conn.crypto_session().transport_parameters().ok()??;
    scratch.clear();
    params.write(scratch);
    find(scratch, MAX_DATAGRAM_FRAME_SIZE)
}

/// The varint value of parameter `id` in an encoded parameter list.
fn find(mut encoded: &[u8], id: u64) -> Option<u64> {
    while !encoded.is_empty() {
        let (this, n) = get_varint(encoded)?;
        encoded = &encoded[n..];
        let (len, n) = get_varint(encoded)?;
        encoded = &encoded[n..];
        let len = usize::try_from(len).ok().filter(|&l| l <= encoded.len())?;
        let (value, rest) = encoded.split_at(len);
        if this == id {
            return get_varint(value).filter(|&(_, n)| n == len).map(|(v, _)| v);
        }
        encoded = rest;
    }
    None
}

#[cfg(test)]
mod tests {
    use lanegate_common::frame::put_varint;

    use super::*;

    fn param(id: u64, value: &[u8], out: &mut Vec<u8>) {
        put_varint(id, out);
        put_varint(value.len() as u64, out);
        out.extend_from_slice(value);
    }

    #[test]
    fn finds_the_parameter_among_others() {
        let mut list = Vec::new();
        param(0x01, &[0x80, 0x00, 0x27, 0x10], &mut list);
        param(0x0f, &[1, 2, 3, 4, 5, 6, 7, 8], &mut list);
        let mut value = Vec::new();
        put_varint(500, &mut value);
        param(0x20, &value, &mut list);
        assert_eq!(find(&list, 0x20), Some(500));
        assert_eq!(find(&list, 0x21), None);
        assert_eq!(find(&[], 0x20), None);
    }

    #[test]
    fn malformed_lists_give_none_never_panic() {
        // A length past the end, and a value longer than its varint.
        assert_eq!(find(&[0x20, 0x05, 0x01], 0x20), None);
        assert_eq!(find(&[0x20, 0x02, 0x01, 0x00], 0x20), None);
        for len in 0..6 {
            let bytes = [0x20, 0x44, 0xb0, 0x40, 0x00][..len].to_vec();
            let _ = find(&bytes, 0x20);
        }
    }
}
