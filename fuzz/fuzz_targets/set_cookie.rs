//! See `helo_transport::fuzzing::set_cookie`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| helo_transport::fuzzing::set_cookie(data));
