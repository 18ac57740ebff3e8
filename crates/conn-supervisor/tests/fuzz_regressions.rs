//! Replays the config fuzz corpus and every crash the fuzzer found
//! (`fuzz/corpus/config/`, `fuzz/regressions/config/`) through the function the fuzz
//! target calls, on stable: a parser change that brings a crash back fails here,
//! without nightly.

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::{Path, PathBuf},
};

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

#[test]
fn config_corpus_and_regressions() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = inputs(&fuzz.join("corpus/config"));
    assert!(
        corpus.len() >= 10,
        "fuzz/corpus/config holds {} inputs; the corpus is part of the test",
        corpus.len()
    );
    let regressions = inputs(&fuzz.join("regressions/config"));
    let failed: Vec<String> = corpus
        .iter()
        .chain(&regressions)
        .filter(|path| {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            catch_unwind(AssertUnwindSafe(|| conn_supervisor::fuzzing::config(&data))).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(failed.is_empty(), "these inputs panic: {failed:#?}");
}

/// Found by the replay of a seed (fuzz/regressions/config/quoted-key-with-line-break):
/// an unknown quoted key holding a line break was shown bare as the issue's key, so
/// one mistake read as two lines of the report.
#[test]
fn an_unknown_quoted_key_is_shown_escaped_on_one_line() {
    let text = "\"a\\nb\" = 1\n[[encoder]]\nid = \"a\"\nurl = \"h\"\n";
    let err = conn_supervisor::config::FleetConfig::parse("t.toml", text, &|_| None, None)
        .expect_err("an unknown key is a mistake");
    assert_eq!(err.issues.len(), 1, "{err}");
    assert_eq!(err.issues[0].key, "\"a\\nb\"");
    assert_eq!(err.to_string().lines().count(), 2, "{err}");
}
