//! The store: what an entry holds, and where entries and blobs live.
//!
//! There is one backend today, the on-disk content-addressed store in
//! [`local`]. Entries are small JSON files naming blobs by digest; blobs are
//! immutable files named by their BLAKE3 digest, compressed when that pays
//! ([`packed`]). [`remote`] layers a shared HTTP cache under it.

pub mod gc;
pub mod journal;
pub mod ledger;
pub mod local;
pub mod manifest;
pub mod packed;
#[cfg(feature = "remote")]
pub mod remote;
#[cfg(not(feature = "remote"))]
#[path = "no_remote.rs"]
pub mod remote;

use serde::{Deserialize, Serialize};

pub use crate::rawpath::RawPath;

use crate::digest::Digest;
use crate::key::Parts;

pub use local::{BlobWriter, Lookup, Store, Trust};

/// Version of the entry format; entries of another format are misses.
pub const ENTRY_FORMAT: u32 = 2;

/// One cached result: everything needed to replay an action.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub format: u32,
    pub key: Digest,
    pub parts: Parts,
    /// Where the command ran (informational: not part of the key).
    pub cwd: String,
    /// Unix time in milliseconds.
    pub created_ms: u64,
    pub duration_ms: u64,
    pub exit_code: i32,
    pub stdout: Blob,
    pub stderr: Blob,
    pub outputs: Vec<OutputFile>,
    /// Directories of the declared outputs, parents first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_dirs: Vec<OutputDir>,
    /// Symlinks inside declared output directories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_links: Vec<OutputLink>,
    /// Declared outputs the run left absent: removed on a hit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<RawPath>,
    /// For a failure stored with `--cache-failures`: the state of the
    /// declared outputs its run started from (see `outputs::state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_from: Option<Digest>,
    /// What a `--trace` run was found to depend on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<crate::deps::Dep>,
    /// Files a `--trace` run removed: removed again on a hit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<RawPath>,
}

impl Entry {
    /// Every blob the entry names: stdout, stderr, then each output file.
    pub fn blobs(&self) -> impl Iterator<Item = Blob> + '_ {
        [self.stdout, self.stderr]
            .into_iter()
            .chain(self.outputs.iter().map(|o| o.blob))
    }
}

/// A blob reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

impl Blob {
    pub fn empty() -> Blob {
        Blob {
            digest: Digest::of(b""),
            size: 0,
        }
    }
}

/// An output file captured after a miss and restored on a hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    pub path: RawPath,
    pub blob: Blob,
    pub mode: u32,
    /// The mtime (seconds, nanoseconds) the command set itself (`touch
    /// -d`, `cp -p`, `tar x`), restored as it was; others get the time of
    /// the restore, so make sees a fresh target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtime: Option<(i64, u32)>,
}

/// A directory under a declared output (or the output itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputDir {
    pub path: RawPath,
    pub mode: u32,
}

/// A symlink inside a declared output directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputLink {
    pub path: RawPath,
    pub target: RawPath,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}
