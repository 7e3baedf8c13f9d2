//! Manifests of `--trace`: per traced action key, the entries recorded
//! under it, newest first (ccache's manifests are the model).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::Store;

/// The newest candidates kept per action key.
const MAX_CANDIDATES: usize = 16;

/// The entries recorded under one traced action key, newest first.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub candidates: Vec<Digest>,
}

/// Reads the manifest of `key`; a missing or unreadable one is empty.
pub fn manifest(store: &Store, key: &Digest) -> Manifest {
    manifest_at(&store.manifest_path(key))
}

/// Reads a manifest file; a missing or unreadable one is empty.
pub fn manifest_at(path: &Path) -> Manifest {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Puts `candidate` first in the manifest of `key` (the caller holds the
/// key's lock, so two traced runs never lose each other's candidates).
pub fn add_candidate(store: &Store, key: &Digest, candidate: Digest) -> io::Result<()> {
    let mut m = manifest(store, key);
    m.candidates.retain(|c| *c != candidate);
    m.candidates.insert(0, candidate);
    m.candidates.truncate(MAX_CANDIDATES);
    store.write_manifest(key, &serde_json::to_vec(&m).map_err(io::Error::other)?)
}
