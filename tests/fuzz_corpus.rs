//! Replays every fuzz target's committed inputs on the stable toolchain: the seed corpora
//! (fuzz/corpus/<target>) and every input that once crashed a target
//! (fuzz/regressions/<target>). A crash found by scripts/fuzz.sh becomes a file in
//! fuzz/regressions and so a test here.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("jws", brevis::fuzzing::jws),
    ("jwks_and_discovery", brevis::fuzzing::jwks_and_discovery),
    ("keys_and_csr", brevis::fuzzing::keys_and_csr),
    ("signing_request", brevis::fuzzing::signing_request),
    ("ctlog_submission", brevis::fuzzing::ctlog_submission),
    ("ctlog_read_params", brevis::fuzzing::ctlog_read_params),
    ("checkpoint", brevis::fuzzing::checkpoint),
    ("ct_entry", brevis::fuzzing::ct_entry),
    ("identity_config", brevis::fuzzing::identity_config),
    ("ci_template", brevis::fuzzing::ci_template),
    ("merkle_differential", brevis::fuzzing::merkle_differential),
    ("der_differential", brevis::fuzzing::der_differential),
];

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn every_fuzz_target_survives_its_seeds_and_past_crashes() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let targets = std::fs::read_dir(fuzz.join("fuzz_targets"))
        .unwrap()
        .count();
    assert_eq!(
        targets,
        TARGETS.len(),
        "every target in fuzz/fuzz_targets is replayed here"
    );
    for (name, run) in TARGETS {
        let seeds = inputs(&fuzz.join("corpus").join(name));
        assert!(!seeds.is_empty(), "{name} has a seed corpus");
        for (path, data) in seeds
            .iter()
            .chain(&inputs(&fuzz.join("regressions").join(name)))
        {
            let outcome = std::panic::catch_unwind(|| run(data));
            assert!(outcome.is_ok(), "{name} failed on {path}");
        }
    }
}
