//! See `helo_transport::fuzzing::wire_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| helo_transport::fuzzing::wire_response(data));
