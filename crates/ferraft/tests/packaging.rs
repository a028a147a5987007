//! What the manifests promise is there: the license files they name, the
//! guide's way to depend on the crates, the durable example it links.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(workspace().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_license_the_manifest_names_has_its_file() {
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("license = \"MIT OR Apache-2.0\""), "the workspace license changed: update this test");
    assert!(read("LICENSE-MIT").contains("Permission is hereby granted, free of charge"));
    assert!(read("LICENSE-APACHE").contains("Apache License\n                        Version 2.0, January 2004"));
}

#[test]
fn every_crate_inherits_the_workspace_rust_version() {
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("rust-version = \"1.89\""), "ferraft-wal uses File::try_lock, stable since 1.89");
    for krate in ["ferraft", "ferraft-wal", "ferraft-net", "ferraft-kv", "ferraft-sim", "ferraft-bench", "ferraft-cli"]
    {
        let own = read(&format!("crates/{krate}/Cargo.toml"));
        assert!(own.contains("rust-version.workspace = true"), "{krate} declares its own rust-version");
    }
}

#[test]
fn the_guide_says_how_to_depend_from_a_clone_and_links_the_durable_example() {
    let guide = read("crates/ferraft/src/docs/getting_started.md");
    assert!(guide.contains("path = \"../ferraft/crates/ferraft\""), "path dependency");
    assert!(guide.contains("git = "), "git dependency");
    let example = "crates/ferraft-kv/examples/replicated_counter.rs";
    assert!(guide.contains(example), "the guide links the durable, networked example");
    assert!(read(example).contains("ferraft_wal") && read(example).contains("ferraft_net"));
}
