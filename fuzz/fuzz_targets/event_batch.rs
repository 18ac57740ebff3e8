//! See `helo_transport::fuzzing::event_batch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| helo_transport::fuzzing::event_batch(data));
