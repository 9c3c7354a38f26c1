#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| brevis::fuzzing::ctlog_submission(data));
