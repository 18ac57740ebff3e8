//! Replays the fuzz corpora and every crash the fuzzers found (`fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/`) through the functions the fuzz targets call, on
//! stable: a parser change that brings a crash back fails here, without nightly.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use helo_transport::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every file of `dir`, sorted; none when the folder does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| match e {
            Ok(e) => e.path(),
            Err(e) => panic!("{}: {e}", dir.display()),
        })
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Feeds every corpus and regression input of `target` to `run`; fails naming each
/// input that panicked.
fn replay(target: &str, run: fn(&[u8])) {
    let corpus = inputs(&fuzz_dir().join("corpus").join(target));
    assert!(
        corpus.len() >= 10,
        "fuzz/corpus/{target} holds {} inputs; the corpus is part of the test",
        corpus.len()
    );
    let regressions = inputs(&fuzz_dir().join("regressions").join(target));
    let failed: Vec<String> = corpus
        .iter()
        .chain(&regressions)
        .filter(|path| {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: these inputs panic: {failed:#?}"
    );
}

#[test]
fn wire_response_corpus_and_regressions() {
    replay("wire_response", fuzzing::wire_response);
}

#[test]
fn http1_answer_corpus_and_regressions() {
    replay("http1_answer", fuzzing::http1_answer);
}

#[test]
fn event_batch_corpus_and_regressions() {
    replay("event_batch", fuzzing::event_batch);
}

#[test]
fn set_cookie_corpus_and_regressions() {
    replay("set_cookie", fuzzing::set_cookie);
}

#[test]
fn param_value_corpus_and_regressions() {
    replay("param_value", fuzzing::param_value);
}
