//! Any bytes as a datagram or frame body: decoding must not panic, and
//! whatever decodes must re-encode to the same bytes.
#![no_main]

use lanegate_common::wire::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data) {
        let mut out = Vec::new();
        msg.encode(&mut out).expect("a decoded message re-encodes");
        assert_eq!(out, data, "encoding is canonical");
    }
});
