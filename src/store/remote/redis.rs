//! Redis as a remote cache: the same names as keys (`jl:cas/...`,
//! `jl:ac/...`), read and written a piece at a time so a large blob never
//! sits whole in memory, over a small pool of connections so lookups and
//! uploads on several threads do not queue behind one another.
//!
//! A blob is appended to a temp key (which expires within the hour if jl
//! dies meanwhile) and then renamed to its name unless that is taken, so a
//! reader never sees half a blob. With a `--ttl`, what is stored expires
//! then.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::redis::{Client, Connection, RedisResult, Value, cmd, pipe};

use super::{Backend, Payload, bad};

pub(super) struct Redis {
    client: Client,
    /// Connections not in use; one is opened when none is free.
    idle: Mutex<Vec<Connection>>,
    timeout: Duration,
    /// `EX` for what is stored (the run's `--ttl`).
    expire: Option<Duration>,
}

/// How much of a value one command reads or writes.
const PIECE: usize = 1024 * 1024;

/// Redis keeps no string longer than this (its `proto-max-bulk-len`).
pub(super) const MAX_VALUE: u64 = 512 * 1024 * 1024;

/// How long a half-written blob's temp key lives.
const TEMP_LIFE_SECS: u64 = 3600;

impl Redis {
    pub(super) fn new(
        url: &str,
        timeout: Duration,
        expire: Option<Duration>,
    ) -> RedisResult<Redis> {
        Ok(Redis {
            client: Client::open(url)?,
            idle: Mutex::new(Vec::new()),
            timeout,
            expire,
        })
    }

    /// Runs `f` on a free connection; a connection that failed is dropped,
    /// not put back.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> io::Result<T> {
        let free = self.idle.lock().expect("redis pool").pop();
        let mut conn = match free {
            Some(conn) => conn,
            None => {
                let conn = self
                    .client
                    .get_connection_with_timeout(self.timeout)
                    .map_err(io::Error::other)?;
                conn.set_read_timeout(Some(self.timeout))
                    .map_err(io::Error::other)?;
                conn.set_write_timeout(Some(self.timeout))
                    .map_err(io::Error::other)?;
                conn
            }
        };
        let result = f(&mut conn).map_err(io::Error::other)?;
        self.idle.lock().expect("redis pool").push(conn);
        Ok(result)
    }

    fn range(&self, key: &str, from: usize) -> io::Result<Vec<u8>> {
        let to = from + PIECE - 1;
        self.with(|c| cmd("GETRANGE").arg(key).arg(from).arg(to).query(c))
    }

    /// Stores a file under `key` a piece at a time, through a temp key.
    fn put_file(&self, key: &str, path: &std::path::Path, only_new: bool) -> io::Result<()> {
        static TEMPS: AtomicU64 = AtomicU64::new(0);
        let temp = format!(
            "jl:tmp/{}-{}-{}",
            std::process::id(),
            TEMPS.fetch_add(1, Ordering::Relaxed),
            crate::store::now_ms()
        );
        let mut file = File::open(path)?;
        let mut piece = Vec::with_capacity(PIECE);
        let mut first = true;
        loop {
            piece.clear();
            let n = (&mut file).take(PIECE as u64).read_to_end(&mut piece)?;
            if n == 0 && !first {
                break;
            }
            let chunk = &piece[..];
            if first {
                self.with(|c| {
                    cmd("SET")
                        .arg(&temp)
                        .arg(chunk)
                        .arg("EX")
                        .arg(TEMP_LIFE_SECS)
                        .query::<Value>(c)
                })?;
                first = false;
            } else {
                self.with(|c| cmd("APPEND").arg(&temp).arg(chunk).query::<Value>(c))?;
            }
            if n < PIECE {
                break;
            }
        }
        let mut done = pipe();
        done.atomic();
        match self.expire {
            Some(ttl) => done.cmd("EXPIRE").arg(&temp).arg(ttl.as_secs().max(1)),
            None => done.cmd("PERSIST").arg(&temp),
        };
        done.cmd(if only_new { "RENAMENX" } else { "RENAME" })
            .arg(&temp)
            .arg(key);
        let (_, renamed): (Value, Value) = self.with(|c| done.query(c))?;
        if renamed == Value::Int(0) {
            // Already there (content-addressed: the same bytes).
            self.with(|c| cmd("DEL").arg(&temp).query::<Value>(c))?;
        }
        Ok(())
    }
}

/// A value read a piece at a time.
struct Pieces<'a> {
    redis: &'a Redis,
    key: String,
    /// The piece read last, and how much of it was given out.
    piece: Vec<u8>,
    given: usize,
    /// Where the next piece starts in the value.
    next: usize,
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.given == self.piece.len() {
            if self.piece.len() < PIECE && self.next > 0 {
                return Ok(0); // the last piece was short: the value ended
            }
            self.piece = self.redis.range(&self.key, self.next)?;
            self.next += self.piece.len();
            self.given = 0;
        }
        let n = buf.len().min(self.piece.len() - self.given);
        buf[..n].copy_from_slice(&self.piece[self.given..self.given + n]);
        self.given += n;
        Ok(n)
    }
}

impl Backend for Redis {
    fn get(&self, name: &str) -> io::Result<Option<Box<dyn Read + Send + '_>>> {
        let key = key(name);
        let piece = self.range(&key, 0)?;
        if piece.is_empty() {
            // Missing (jl never stores an empty value).
            return Ok(None);
        }
        Ok(Some(Box::new(Pieces {
            redis: self,
            key,
            next: piece.len(),
            piece,
            given: 0,
        })))
    }

    fn exists(&self, name: &str) -> io::Result<bool> {
        let n: u64 = self.with(|c| cmd("EXISTS").arg(key(name)).query(c))?;
        Ok(n > 0)
    }

    fn put(&self, name: &str, body: Payload<'_>) -> io::Result<()> {
        let only_new = name.starts_with("cas/");
        match body {
            Payload::File(path) => {
                if std::fs::metadata(path)?.len() > MAX_VALUE {
                    return Err(bad(format!("{name} is larger than Redis keeps")));
                }
                self.put_file(&key(name), path, only_new)
            }
            Payload::Bytes(bytes) => {
                let mut set = cmd("SET");
                set.arg(key(name)).arg(bytes);
                if only_new {
                    set.arg("NX");
                }
                if let Some(ttl) = self.expire {
                    set.arg("EX").arg(ttl.as_secs().max(1));
                }
                self.with(|c| set.query::<Value>(c))?;
                Ok(())
            }
        }
    }

    fn max_blob(&self) -> Option<u64> {
        Some(MAX_VALUE)
    }
}

fn key(name: &str) -> String {
    format!("jl:{name}")
}
