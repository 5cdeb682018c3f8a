//! Replays every kept input through its target without instrumentation: the seed corpus
//! (`corpus/<target>/`) and every input that once crashed a target
//! (`regressions/<target>/`). A target that panics on one fails the test, naming the file.
//! `scripts/fuzz.sh replay` runs this; so does CI.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An input that takes longer than this is a hang.
const SLOW: Duration = Duration::from_secs(5);

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| {
        p.is_file()
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    files.sort();
    files
}

#[test]
fn every_kept_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for (name, run) in keyless_fuzz::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        let regressions = inputs(&root.join("regressions").join(name));
        assert!(!corpus.is_empty(), "no seed corpus for {name}");
        for file in corpus.iter().chain(&regressions) {
            let data = std::fs::read(file).unwrap();
            let start = Instant::now();
            let outcome = std::panic::catch_unwind(|| run(&data));
            let took = start.elapsed();
            if outcome.is_err() {
                failures.push(format!("{name}: {} panicked", file.display()));
            } else if took > SLOW {
                failures.push(format!("{name}: {} took {took:?}", file.display()));
            }
        }
        counts.push(format!(
            "{name}: {} seeds, {} regressions",
            corpus.len(),
            regressions.len()
        ));
    }
    println!("{}", counts.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
