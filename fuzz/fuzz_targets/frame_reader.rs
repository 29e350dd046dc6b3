//! Any stream bytes, fed in fuzzer-chosen chunks: the frame reader must not
//! panic, must only yield messages within its bound, and must never grow.
#![no_main]

use lanegate_common::frame::FrameReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut reader = FrameReader::new(300);
    for piece in rest.chunks(chunk) {
        let ok = reader.feed(piece, |m| assert!((2..=300).contains(&m.len())));
        if ok.is_err() {
            return;
        }
        // The message bound plus the longest varint prefix.
        assert!(reader.buffered() <= 308);
    }
    let _ = reader.finish();
});
