//! See `helo_transport::fuzzing::http1_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| helo_transport::fuzzing::http1_answer(data));
