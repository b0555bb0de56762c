//! The value codec: any bytes decode to a value or an error, and a value
//! that decodes encodes to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = rask::value::decode(data) {
        let again = rask::value::encode(&v);
        let back = rask::value::decode(&again).expect("an encoded value decodes");
        // Compared as bytes: NaN floats are not equal to themselves.
        assert_eq!(rask::value::encode(&back), again);
    }
    let _ = rask::value::decode_bytes(&bytes::Bytes::copy_from_slice(data));
});
