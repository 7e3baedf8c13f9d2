//! A remote cache shared by machines: Bazel's HTTP cache protocol
//! ([`http`]), an S3 bucket ([`s3`]), an Azure Blob container
//! ([`azblob`]) or Redis ([`redis`]), each a
//! [`Backend`] that gets, checks and puts a body under a name.
//!
//! Layered under the local store: a local miss asks the remote, a remote
//! hit is written into the local store (which then replays it as always),
//! and a local commit is uploaded, blobs first and the entry last, by a
//! few background threads that the run waits for at its end.
//!
//! ```text
//! <remote>/cas/<sha256 of the blob>   each blob (bazel-remote checks the SHA-256)
//! <remote>/ac/<key>                   {"entry": <entry>, "cas": {<blake3>: <sha256>}}
//! ```
//!
//! Nothing from the remote is trusted: a blob must match both its SHA-256
//! and the BLAKE3 digest the entry names before it enters the local store,
//! and the entry then goes through the same checks as a local one. The
//! remote never fails a command: its first error (refused, timed out,
//! 5xx, garbage, a blob that is not what its name says) prints one warning
//! and turns the remote off for the rest of the process, so an outage costs
//! at most one timeout. Once jl has a signal to stop on, every wait on the
//! remote is given up within a tenth of a second of that signal.

mod azblob;
mod http;
mod redis;
mod s3;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::exec;
use crate::store::journal::Event;
use crate::store::{Entry, Store};

/// What a remote cache must do: few operations, the rest is shared.
trait Backend: Send + Sync {
    /// The body stored under `name`, or `None` when there is none.
    fn get(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send + '_>>>;
    fn exists(&self, name: &str) -> io::Result<bool>;
    fn put(&self, name: &str, body: Payload<'_>) -> io::Result<()>;
    /// The largest blob it keeps; a result with a larger one stays local.
    fn max_blob(&self) -> Option<u64> {
        None
    }
}

/// A body to store.
enum Payload<'a> {
    File(&'a std::path::Path),
    Bytes(&'a [u8]),
}

/// A remote cache, and the uploads still under way.
pub struct Remote {
    link: Arc<Link>,
    uploads: Mutex<Option<Uploads>>,
}

/// Where the remote is, and whether it still answers.
struct Link {
    backend: Box<dyn Backend>,
    /// The URL without credentials, for messages.
    shown: String,
    /// Every secret a message could carry (user:password, query values,
    /// `JL_REMOTE_HEADER`'s value), masked by [`Link::mask`].
    secrets: Vec<String>,
    read_only: bool,
    off: AtomicBool,
}

/// The background uploaders: a bounded queue of committed entries.
struct Uploads {
    queue: SyncSender<(Store, Entry)>,
    threads: Vec<JoinHandle<()>>,
}

/// How many entries upload at once, and how many more may wait: a worker
/// that commits faster than the remote takes waits for a free place.
const UPLOADERS: usize = 4;
const UPLOAD_QUEUE: usize = 64;

/// How often a wait on the remote checks for a signal.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.link.shown)
    }
}

/// What the remote keeps under `/ac/<key>`.
#[derive(Serialize, Deserialize)]
struct RemoteEntry {
    entry: Entry,
    /// SHA-256 (the remote's name) of each blob, by BLAKE3 digest.
    cas: BTreeMap<String, String>,
}

impl Remote {
    /// Parses `--remote` / `JL_REMOTE`. `header` is `JL_REMOTE_HEADER`
    /// ("Name: value"); `expire` is the run's `--ttl` (Redis only).
    pub fn new(
        url: &str,
        header: Option<&str>,
        read_only: bool,
        timeout: Duration,
        expire: Option<Duration>,
    ) -> Result<Remote, String> {
        let mut secrets = secrets_of(url);
        let backend: Box<dyn Backend> = match url.split_once("://") {
            Some(("http" | "https", _)) => Box::new(http::Http::new(url, header, timeout)?),
            Some(("s3", _)) => Box::new(s3::S3::new(url, timeout)?),
            Some(("azblob", _)) => {
                let (backend, keys) = azblob::AzBlob::new(url, timeout)?;
                secrets.extend(keys);
                Box::new(backend)
            }
            Some(("redis", _)) => Box::new(
                redis::Redis::new(url, timeout, expire)
                    .map_err(|e| format!("--remote {}: {e}", redact(url)))?,
            ),
            _ => {
                return Err(format!(
                    "--remote {}: expected http(s)://host[:port][/prefix], s3://bucket[/prefix], azblob://container[/prefix] or redis://host:port[/db]",
                    redact(url)
                ));
            }
        };
        if let Some((_, value)) = header.and_then(|h| h.split_once(':')) {
            secrets.push(value.trim().to_string());
        }
        secrets.retain(|s| !s.is_empty());
        let link = Link {
            backend,
            shown: redact(url),
            secrets,
            read_only,
            off: AtomicBool::new(false),
        };
        Ok(Remote {
            link: Arc::new(link),
            uploads: Mutex::new(None),
        })
    }

    /// Asks the remote for `key`; on a hit, its blobs and then its entry
    /// are written to `store`. Returns whether the local store now has it.
    /// Once signals are caught, the remote is asked from a helper thread
    /// so that a signal is not kept waiting on it.
    pub fn fetch(&self, store: &Store, key: &Digest) -> bool {
        if self.link.off.load(Ordering::Relaxed) {
            return false;
        }
        if !exec::catching_signals() {
            return self.link.fetch(store, key);
        }
        let (link, store, key) = (Arc::clone(&self.link), store.clone(), *key);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let _ = tx.send(link.fetch(&store, &key));
        });
        until_interrupted(&rx).unwrap_or(false)
    }

    /// Queues a committed entry for upload: every blob, then the entry.
    pub fn upload(&self, store: &Store, entry: &Entry) {
        if self.link.read_only || self.link.off.load(Ordering::Relaxed) {
            return;
        }
        let queue = {
            let mut uploads = self.uploads.lock().expect("uploads");
            let uploads = uploads.get_or_insert_with(|| Uploads::start(&self.link));
            uploads.queue.clone()
        };
        let mut job = (store.clone(), entry.clone());
        loop {
            match queue.try_send(job) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(back)) => {
                    if exec::interrupted().is_some() {
                        return;
                    }
                    job = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }

    /// Waits for the uploads queued so far (not for long after a signal).
    pub fn finish(&self) {
        let Some(uploads) = self.uploads.lock().expect("uploads").take() else {
            return;
        };
        drop(uploads.queue);
        for thread in uploads.threads {
            while !thread.is_finished() {
                if exec::interrupted().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = thread.join();
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Uploads {
    fn start(link: &Arc<Link>) -> Uploads {
        let (queue, jobs) = std::sync::mpsc::sync_channel::<(Store, Entry)>(UPLOAD_QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = (0..UPLOADERS)
            .map(|_| {
                let (link, jobs) = (Arc::clone(link), Arc::clone(&jobs));
                std::thread::spawn(move || {
                    loop {
                        let next = jobs.lock().expect("upload queue").recv();
                        let Ok((store, entry)) = next else { return };
                        if exec::interrupted().is_some() {
                            return;
                        }
                        link.upload(&store, &entry);
                    }
                })
            })
            .collect();
        Uploads { queue, threads }
    }
}

/// What `rx` yields, unless a signal to stop comes first.
fn until_interrupted<T>(rx: &Receiver<T>) -> Option<T> {
    loop {
        match rx.recv_timeout(SIGNAL_POLL) {
            Ok(value) => return Some(value),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {
                if exec::interrupted().is_some() {
                    return None;
                }
            }
        }
    }
}

impl Link {
    fn fetch(&self, store: &Store, key: &Digest) -> bool {
        if self.off.load(Ordering::Relaxed) {
            return false;
        }
        match self.try_fetch(store, key) {
            Ok(Some(bytes)) => {
                store.record(Event::RemoteHit { key: *key, bytes });
                true
            }
            Ok(None) => {
                store.record(Event::RemoteMiss { key: *key });
                false
            }
            Err(e) => {
                self.fail(store, &e);
                false
            }
        }
    }

    fn upload(&self, store: &Store, entry: &Entry) {
        if self.off.load(Ordering::Relaxed) {
            return;
        }
        match self.try_upload(store, entry) {
            Ok(Some(bytes)) => store.record(Event::RemoteUpload {
                key: entry.key,
                bytes,
            }),
            Ok(None) => {}
            Err(e) => self.fail(store, &e),
        }
    }

    fn fail(&self, store: &Store, e: &io::Error) {
        if exec::interrupted().is_some() {
            return; // jl is stopping: whatever broke is not the remote's fault
        }
        store.record(Event::RemoteError);
        if !self.off.swap(true, Ordering::Relaxed) {
            crate::error::warn(format_args!(
                "remote cache {} failed ({}); going on with the local store only",
                self.shown,
                self.mask(&e.to_string())
            ));
        }
    }

    /// `Ok(None)` is a plain miss (no entry, or a blob the server evicted).
    fn try_fetch(&self, store: &Store, key: &Digest) -> io::Result<Option<u64>> {
        if store.prepare().is_err() {
            return Ok(None); // the local store's trouble is reported by the run
        }
        let Some(body) = self.backend.get(&format!("ac/{}", key.hex()))? else {
            return Ok(None);
        };
        let mut text = Vec::new();
        body.take(MAX_ENTRY).read_to_end(&mut text)?;
        let remote: RemoteEntry = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("entry {} is not jl's: {e}", key.hex())))?;
        if remote.entry.key != *key {
            return Err(bad(format!("entry {} names another key", key.hex())));
        }
        let mut bytes = text.len() as u64;
        for blob in remote.entry.blobs() {
            if blob.size == 0 || store.has_blob(&blob.digest) {
                continue;
            }
            let sha = remote
                .cas
                .get(&blob.digest.hex())
                .ok_or_else(|| bad(format!("entry {} lacks a blob's name", key.hex())))?;
            let Some(body) = self.backend.get(&format!("cas/{sha}"))? else {
                return Ok(None);
            };
            let mut writer = store.blob_writer();
            let mut sha256 = Sha256::new();
            each_piece(body.take(blob.size + 1), |piece| {
                sha256.update(piece);
                writer.write_all(piece)
            })?;
            let got_sha = Digest(sha256.finalize().into()).hex();
            if writer.error().is_some() {
                return Ok(None); // the local store's trouble, reported by the run
            }
            if got_sha != *sha || writer.digest() != blob.digest {
                // Corrupt on the server: never used, and a remote that
                // serves such bytes is not asked again in this run.
                return Err(bad(format!(
                    "blob {} does not match its digest",
                    &blob.digest.hex()[..12]
                )));
            }
            // From here on a failure is the local store's (a full disk),
            // not the remote's: a plain miss, reported by the run.
            if store.finish_blob(writer).is_err() {
                return Ok(None);
            }
            bytes += blob.size;
        }
        if store.commit(&remote.entry).is_err() {
            return Ok(None);
        }
        Ok(Some(bytes))
    }

    /// The bytes sent, or `None` when the entry stays local: a blob is gone
    /// (a gc ran meanwhile), no longer matches its digest (the remote gets
    /// only what jl could replay), or is larger than the remote keeps.
    fn try_upload(&self, store: &Store, entry: &Entry) -> io::Result<Option<u64>> {
        let mut cas = BTreeMap::new();
        let mut bytes = 0;
        for blob in entry.blobs() {
            if blob.size == 0 || cas.contains_key(&blob.digest.hex()) {
                continue;
            }
            if self.backend.max_blob().is_some_and(|max| blob.size > max) {
                return Ok(None);
            }
            // The remote keeps what the run produced: a compressed blob
            // travels uncompressed.
            let Ok(raw) = store.raw_blob(&blob) else {
                return Ok(None);
            };
            let Ok(sha) = sha256_if_blob(raw.path(), &blob.digest) else {
                return Ok(None);
            };
            if !self.backend.exists(&format!("cas/{sha}"))? {
                self.backend
                    .put(&format!("cas/{sha}"), Payload::File(raw.path()))?;
                bytes += blob.size;
            }
            cas.insert(blob.digest.hex(), sha);
        }
        let remote = RemoteEntry {
            entry: entry.clone(),
            cas,
        };
        let json = serde_json::to_vec(&remote).map_err(io::Error::other)?;
        bytes += json.len() as u64;
        self.backend
            .put(&format!("ac/{}", entry.key.hex()), Payload::Bytes(&json))?;
        Ok(Some(bytes))
    }

    /// `text` (an error from the HTTP or Redis client, which may quote a
    /// request) with every secret replaced by `***`.
    fn mask(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |t, secret| {
            t.replace(secret.as_str(), "***")
        })
    }
}

/// Reads `from` to its end, handing each piece read to `use_piece`.
fn each_piece(
    mut from: impl Read,
    mut use_piece: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => use_piece(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The SHA-256 of the file at `path`, if its BLAKE3 digest is `digest`.
fn sha256_if_blob(path: &std::path::Path, digest: &Digest) -> io::Result<String> {
    let mut sha256 = Sha256::new();
    let mut blake3 = blake3::Hasher::new();
    each_piece(File::open(path)?, |piece| {
        sha256.update(piece);
        blake3.update(piece);
        Ok(())
    })?;
    if Digest(*blake3.finalize().as_bytes()) != *digest {
        return Err(bad("no longer matches its digest".to_string()));
    }
    Ok(Digest(sha256.finalize().into()).hex())
}

/// The largest entry document accepted from a remote.
const MAX_ENTRY: u64 = 16 * 1024 * 1024;

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A URL safe to print: user:password and every query value replaced
/// by `***`.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) =
        before_query.split_at(before_query.find('/').unwrap_or(before_query.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority.to_string(), |(_, h)| format!("***@{h}"));
    let mut shown = if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    };
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{name}=***"),
                None => pair.to_string(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&pairs.join("&"));
    }
    shown
}

/// The parts of a URL that may be secret: its userinfo and query values.
fn secrets_of(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = before_query.split('/').next().unwrap_or("");
    if let Some((user, _)) = authority.rsplit_once('@') {
        secrets.push(user.to_string());
    }
    for pair in query.split('&') {
        if let Some((_, value)) = pair.split_once('=') {
            secrets.push(value.to_string());
        }
    }
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_become_a_header_and_never_print() {
        let r = Remote::new(
            "https://me:secret@cache.example:8080/jl/",
            None,
            false,
            Duration::from_secs(5),
            None,
        )
        .unwrap();
        let http = http::Http::new(
            "https://me:secret@cache.example:8080/jl/",
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(http.base, "https://cache.example:8080/jl");
        assert_eq!(http.headers[0].1, "Basic bWU6c2VjcmV0");
        assert_eq!(
            format!("{r:?}"),
            "Remote(https://***@cache.example:8080/jl/)"
        );
        assert_eq!(redact("https://me:secret@h/x"), "https://***@h/x");
        assert_eq!(
            redact("https://h/x?token=T0P&sig=abc"),
            "https://h/x?token=***&sig=***"
        );
        assert_eq!(redact("redis://:pw@h:6379/0"), "redis://***@h:6379/0");
        assert!(Remote::new("ftp://h", None, false, Duration::from_secs(5), None).is_err());
    }
}
