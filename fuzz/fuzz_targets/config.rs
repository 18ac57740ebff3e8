//! See `conn_supervisor::fuzzing::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| conn_supervisor::fuzzing::config(data));
