//! The remote cache in a jl built without the `remote` feature: `--remote`
//! is refused with a clear error, and nothing else changes.

use std::time::Duration;

use crate::digest::Digest;
use crate::store::{Entry, Store};

/// Never made: [`Remote::new`] always says why.
#[derive(Debug)]
pub enum Remote {}

impl Remote {
    pub fn new(
        _url: &str,
        _header: Option<&str>,
        _read_only: bool,
        _timeout: Duration,
        _expire: Option<Duration>,
    ) -> Result<Remote, String> {
        Err("--remote: this jl was built without remote caches (cargo feature `remote`)".into())
    }

    pub fn fetch(&self, _store: &Store, _key: &Digest) -> bool {
        match *self {}
    }

    pub fn upload(&self, _store: &Store, _entry: &Entry) {
        match *self {}
    }

    pub fn finish(&self) {
        match *self {}
    }
}
