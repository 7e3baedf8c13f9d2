//! A path kept exactly, as the store's entries keep paths: a JSON string
//! when it is UTF-8, else its bytes.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A path kept exactly: a JSON string when it is UTF-8, else its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RawPath {
    Text(String),
    Bytes { bytes: Vec<u8> },
}

impl RawPath {
    pub fn new(path: &Path) -> RawPath {
        match path.to_str() {
            Some(s) => RawPath::Text(s.to_owned()),
            None => RawPath::Bytes {
                bytes: path.as_os_str().as_bytes().to_vec(),
            },
        }
    }

    pub fn to_path(&self) -> PathBuf {
        match self {
            RawPath::Text(s) => PathBuf::from(s),
            RawPath::Bytes { bytes } => PathBuf::from(OsString::from_vec(bytes.clone())),
        }
    }

    pub fn display(&self) -> String {
        match self {
            RawPath::Text(s) => s.clone(),
            RawPath::Bytes { bytes } => OsStr::from_bytes(bytes).to_string_lossy().into_owned(),
        }
    }
}
