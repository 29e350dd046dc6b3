//! `docs/ARCHITECTURE.md` is the map, and it must match the tree file for
//! file: every source file of the workspace is listed in its "Files"
//! section, and every source path the document names exists.

use std::path::{Path, PathBuf};

const CRATES: [&str; 8] = [
    "common", "udp", "shard", "control", "gateway", "client", "bots", "benches",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

fn sources(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("a readable directory")
        .map(|e| e.expect("an entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root()).expect("under the root");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn map() -> String {
    std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).expect("docs/ARCHITECTURE.md")
}

#[test]
fn every_source_file_is_on_the_map() {
    let map = map();
    let mut files = Vec::new();
    for c in CRATES {
        sources(&root().join(c).join("src"), &mut files);
    }
    assert!(files.len() > 50, "found only {files:?}");
    let missing: Vec<_> = files
        .iter()
        .filter(|f| !map.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/ARCHITECTURE.md: {missing:?}"
    );
}

#[test]
fn every_source_path_on_the_map_exists() {
    let map = map();
    let gone: Vec<&str> = map
        .split('`')
        .filter(|s| {
            CRATES.iter().any(|c| s.starts_with(&format!("{c}/")))
                && (s.ends_with(".rs") || s.ends_with('/'))
                && !s.contains(' ')
        })
        .filter(|s| !root().join(s).exists())
        .collect();
    assert!(
        gone.is_empty(),
        "named in docs/ARCHITECTURE.md but not in the tree: {gone:?}"
    );
}
