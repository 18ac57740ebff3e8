//! See `helo_transport::fuzzing::param_value`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| helo_transport::fuzzing::param_value(data));
