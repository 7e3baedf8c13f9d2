//! A remote cache shared by machines: Bazel's HTTP cache protocol, or Redis.
//!
//! Layered under the local store: a local miss asks the remote, a remote
//! hit is written into the local store (which then replays it as always),
//! and a local commit is uploaded, blobs first and the entry last. Any HTTP
//! server that stores what is PUT under a path serves: nginx or Apache with
//! WebDAV, bazel-remote (`--disable_http_ac_validation`), the HTTP caches
//! of Gradle and ccache.
//!
//! ```text
//! PUT/GET <url>/cas/<sha256 of the blob>   each blob (bazel-remote checks the SHA-256)
//! PUT/GET <url>/ac/<key>                   {"entry": <entry>, "cas": {<blake3>: <sha256>}}
//! ```
//!
//! On `redis://host:port[/db]` the same names are keys (`jl:cas/...`,
//! `jl:ac/...`); blobs are written with `SET NX`, and with `EX` when the
//! run has a `--ttl`.
//!
//! Nothing from the remote is trusted: a blob must match both its SHA-256
//! and the BLAKE3 digest the entry names before it enters the local store,
//! and the entry then goes through the same checks as a local one. The
//! remote never fails a command: its first error (refused, timed out,
//! 5xx, garbage) prints one warning and turns the remote off for the rest
//! of the process, so an outage costs at most one timeout.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::store::journal::Event;
use crate::store::{Entry, Store};

/// A remote cache: where it is, and whether it still answers.
pub struct Remote {
    transport: Transport,
    /// The URL without credentials, for messages.
    shown: String,
    /// Every secret a message could carry (user:password, query values,
    /// `JL_REMOTE_HEADER`'s value), masked by [`Remote::mask`].
    secrets: Vec<String>,
    read_only: bool,
    off: AtomicBool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.shown)
    }
}

/// How names are fetched and stored: the only part that differs.
#[allow(clippy::large_enum_variant)] // one per process
enum Transport {
    Http {
        /// `?...` of the URL (a token, say), sent after each name.
        query: String,
        /// The URL without credentials and without a trailing slash.
        base: String,
        /// `Authorization` from the URL's user:password, and
        /// `JL_REMOTE_HEADER`.
        headers: Vec<(String, String)>,
        agent: ureq::Agent,
    },
    Redis {
        client: redis::Client,
        connection: Mutex<Option<redis::Connection>>,
        timeout: Duration,
        /// `EX` for what is stored (the run's `--ttl`).
        expire: Option<Duration>,
    },
}

/// A body to store.
enum Payload<'a> {
    File(&'a std::path::Path),
    Bytes(&'a [u8]),
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
        let transport = match url.split_once("://") {
            Some(("http" | "https", _)) => http(url, header, timeout)?,
            Some(("redis", _)) => Transport::Redis {
                client: redis::Client::open(url)
                    .map_err(|e| format!("--remote {}: {e}", redact(url)))?,
                connection: Mutex::new(None),
                timeout,
                expire,
            },
            _ => {
                return Err(format!(
                    "--remote {}: expected http(s)://host[:port][/prefix] or redis://host:port[/db]",
                    redact(url)
                ));
            }
        };
        let mut secrets = secrets_of(url);
        if let Some((_, value)) = header.and_then(|h| h.split_once(':')) {
            secrets.push(value.trim().to_string());
        }
        secrets.retain(|s| !s.is_empty());
        Ok(Remote {
            transport,
            shown: redact(url),
            secrets,
            read_only,
            off: AtomicBool::new(false),
        })
    }

    /// Asks the remote for `key`; on a hit, its blobs and then its entry
    /// are written to `store`. Returns whether the local store now has it.
    pub fn fetch(&self, store: &Store, key: &Digest) -> bool {
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

    /// Uploads a committed entry: every blob, then the entry.
    pub fn upload(&self, store: &Store, entry: &Entry) {
        if self.read_only || self.off.load(Ordering::Relaxed) {
            return;
        }
        match self.try_upload(store, entry) {
            Ok(bytes) => store.record(Event::RemoteUpload {
                key: entry.key,
                bytes,
            }),
            Err(e) => self.fail(store, &e),
        }
    }

    fn fail(&self, store: &Store, e: &io::Error) {
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
        let Some(body) = self.get(&format!("ac/{}", key.hex()))? else {
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
            let Some(body) = self.get(&format!("cas/{sha}"))? else {
                return Ok(None);
            };
            let mut writer = store.blob_writer();
            let mut sha256 = Sha256::new();
            let mut reader = body.take(blob.size + 1);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                sha256.update(&buf[..n]);
                writer.write_all(&buf[..n])?;
            }
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

    fn try_upload(&self, store: &Store, entry: &Entry) -> io::Result<u64> {
        let mut cas = BTreeMap::new();
        let mut bytes = 0;
        for blob in entry.blobs() {
            if blob.size == 0 || cas.contains_key(&blob.digest.hex()) {
                continue;
            }
            // The remote keeps what the run produced: a compressed blob
            // travels uncompressed.
            let raw = store.raw_blob(&blob);
            let Ok(sha) = raw
                .as_ref()
                .map_err(drop)
                .and_then(|r| sha256_of(r.path()).map_err(drop))
            else {
                // Gone locally (a gc ran meanwhile): upload nothing rather
                // than an entry without its blob.
                return Ok(bytes);
            };
            let raw = raw.expect("read just now");
            if !self.exists(&format!("cas/{sha}"))? {
                self.put(&format!("cas/{sha}"), Payload::File(raw.path()))?;
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
        self.put(&format!("ac/{}", entry.key.hex()), Payload::Bytes(&json))?;
        Ok(bytes)
    }

    /// The stored body under `name`, or `None` when there is none.
    fn get(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send>>> {
        match &self.transport {
            Transport::Http { agent, .. } => {
                let response = self.http(agent.get(self.url(name))).call();
                let response = response.map_err(io::Error::other)?;
                match response.status().as_u16() {
                    200 => Ok(Some(Box::new(response.into_body().into_reader()))),
                    404 => Ok(None),
                    code => Err(bad(format!("GET {name}: HTTP {code}"))),
                }
            }
            Transport::Redis { .. } => {
                let value: Option<Vec<u8>> = self.redis(redis::cmd("GET").arg(redis_key(name)))?;
                Ok(value.map(|v| Box::new(io::Cursor::new(v)) as Box<dyn Read + Send>))
            }
        }
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        match &self.transport {
            Transport::Http { agent, .. } => {
                let response = self.http(agent.head(self.url(name))).call();
                let response = response.map_err(io::Error::other)?;
                match response.status().as_u16() {
                    200 => Ok(true),
                    404 => Ok(false),
                    code => Err(bad(format!("HEAD {name}: HTTP {code}"))),
                }
            }
            Transport::Redis { .. } => {
                let n: u64 = self.redis(redis::cmd("EXISTS").arg(redis_key(name)))?;
                Ok(n > 0)
            }
        }
    }

    fn put(&self, name: &str, body: Payload<'_>) -> io::Result<()> {
        match &self.transport {
            Transport::Http { agent, .. } => {
                let request = self.http(agent.put(self.url(name)));
                let response = match body {
                    Payload::File(path) => request.send(File::open(path)?),
                    Payload::Bytes(bytes) => request.send(bytes),
                };
                match response.map_err(io::Error::other)?.status().as_u16() {
                    200..=299 => Ok(()),
                    code => Err(bad(format!("PUT {name}: HTTP {code}"))),
                }
            }
            Transport::Redis { expire, .. } => {
                let bytes = match body {
                    Payload::File(path) => std::fs::read(path)?,
                    Payload::Bytes(bytes) => bytes.to_vec(),
                };
                let mut cmd = redis::cmd("SET");
                cmd.arg(redis_key(name)).arg(bytes);
                if name.starts_with("cas/") {
                    cmd.arg("NX");
                }
                if let Some(ttl) = expire {
                    cmd.arg("EX").arg(ttl.as_secs().max(1));
                }
                let _: redis::Value = self.redis(&cmd)?;
                Ok(())
            }
        }
    }

    fn url(&self, name: &str) -> String {
        match &self.transport {
            Transport::Http { base, query, .. } => format!("{base}/{name}{query}"),
            Transport::Redis { .. } => unreachable!("redis has no URLs"),
        }
    }

    /// `text` (an error from the HTTP or Redis client, which may quote a
    /// request) with every secret replaced by `***`.
    fn mask(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_string(), |t, secret| {
            t.replace(secret.as_str(), "***")
        })
    }

    /// Adds the configured headers to an HTTP request.
    fn http<B>(&self, mut request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        if let Transport::Http { headers, .. } = &self.transport {
            for (name, value) in headers {
                request = request.header(name, value);
            }
        }
        request
    }

    /// Runs one Redis command on the (lazily opened) connection.
    fn redis<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> io::Result<T> {
        let Transport::Redis {
            client,
            connection,
            timeout,
            ..
        } = &self.transport
        else {
            unreachable!("only for redis")
        };
        let mut slot = connection.lock().expect("redis connection");
        if slot.is_none() {
            let conn = client
                .get_connection_with_timeout(*timeout)
                .map_err(io::Error::other)?;
            conn.set_read_timeout(Some(*timeout))
                .map_err(io::Error::other)?;
            conn.set_write_timeout(Some(*timeout))
                .map_err(io::Error::other)?;
            *slot = Some(conn);
        }
        let conn = slot.as_mut().expect("just opened");
        cmd.query(conn).map_err(io::Error::other)
    }
}

/// The HTTP transport for `url`.
fn http(url: &str, header: Option<&str>, timeout: Duration) -> Result<Transport, String> {
    let (scheme, rest) = url.split_once("://").expect("checked by the caller");
    let (rest, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    let mut headers = Vec::new();
    if let Some(user) = userinfo {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(user);
        headers.push(("Authorization".to_string(), format!("Basic {token}")));
    }
    if let Some(header) = header {
        let (name, value) = header
            .split_once(':')
            .ok_or("JL_REMOTE_HEADER: expected 'Name: value'")?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    // The timeout is a deadline for a whole request, body included: a
    // server sending a byte now and then must not hold a run.
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_send_request(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    Ok(Transport::Http {
        query: query.to_string(),
        base: format!("{scheme}://{host}{}", path.trim_end_matches('/')),
        headers,
        agent,
    })
}

fn redis_key(name: &str) -> String {
    format!("jl:{name}")
}

fn sha256_of(path: &std::path::Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut sha256 = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf)? {
            0 => break,
            n => sha256.update(&buf[..n]),
        }
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
        let Transport::Http { base, headers, .. } = &r.transport else {
            panic!("an http remote")
        };
        assert_eq!(base, "https://cache.example:8080/jl");
        assert_eq!(headers[0].1, "Basic bWU6c2VjcmV0");
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
