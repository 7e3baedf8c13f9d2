//! Compressed blobs. Most of what jl keeps is text (feature vectors, logs,
//! compiler diagnostics, JSON), which zstd shrinks several times; ccache
//! and sccache compress everything they keep the same way. A blob is
//! compressed when that pays and kept raw otherwise (a small one, or one
//! whose start does not shrink: images, archives, compressed data).
//!
//! A compressed blob is `objects/ab/<digest>.zst`, one zstd frame; its
//! name is still the digest of the uncompressed content, so deduplication,
//! verification and the remote's layout do not change. Nothing in a frame
//! is trusted: a reader yields exactly the size the entry records or
//! fails, whatever the frame claims, and what it yields is checked against
//! the digest before a byte of it is used.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The suffix of a compressed blob's file.
pub const SUFFIX: &str = "zst";
/// The default level: zstd's fast setting, as ccache's default.
pub const DEFAULT_LEVEL: i32 = 1;
/// The highest level accepted (beyond it zstd needs much more memory).
pub const MAX_LEVEL: i32 = 19;
/// Smaller blobs stay raw: a block on disk holds them either way.
const SMALLEST: u64 = 1024;
/// The start of a blob compressed first, to see whether the rest will
/// shrink.
const SAMPLE: usize = 64 * 1024;

/// The blob in `raw` (`size` bytes) compressed at `level` into a new temp
/// file in `dir`, or `None` when it is to stay raw.
pub fn compress(
    raw: &File,
    size: u64,
    level: i32,
    dir: &Path,
) -> io::Result<Option<tempfile::NamedTempFile>> {
    if level <= 0 || size < SMALLEST {
        return Ok(None);
    }
    let mut sample = vec![0u8; SAMPLE.min(size as usize)];
    raw.read_exact_at(&mut sample, 0)?;
    let packed = zstd::bulk::compress(&sample, level)?;
    // Worth it only when the sample loses a tenth or more.
    if packed.len() * 10 > sample.len() * 9 {
        return Ok(None);
    }
    let tmp = crate::store::local::temp_in(dir)?;
    let mut encoder = zstd::Encoder::new(tmp.as_file(), level)?;
    encoder.include_contentsize(true)?;
    encoder.set_pledged_src_size(Some(size))?;
    io::copy(&mut Positional { file: raw, at: 0 }, &mut encoder)?;
    encoder.finish()?.flush()?;
    Ok(Some(tmp))
}

/// The content of the compressed blob in `file`, read from its start:
/// exactly `size` bytes, or an error (a truncated frame, one that holds
/// more, or garbage).
pub fn reader(file: &File, size: u64) -> io::Result<impl Read + '_> {
    let decoder = zstd::Decoder::new(Positional { file, at: 0 })?.single_frame();
    Ok(Exact {
        inner: decoder,
        left: size,
    })
}

/// The content of a small compressed blob, decompressed in one call into
/// a buffer of exactly `size` bytes (no stream, no window to allocate: a
/// hit replays it at about the cost of reading it raw).
pub fn unpack(file: &File, size: u64) -> io::Result<Vec<u8>> {
    let most = zstd::zstd_safe::compress_bound(size as usize) as u64 + 64;
    let mut frame = Vec::new();
    Positional { file, at: 0 }
        .take(most + 1)
        .read_to_end(&mut frame)?;
    if frame.len() as u64 > most {
        return Err(invalid("is larger than any frame of its size"));
    }
    let content = zstd::bulk::decompress(&frame, size as usize)
        .map_err(|e| invalid(&format!("cannot be read ({e})")))?;
    if content.len() as u64 != size {
        return Err(invalid("does not hold its recorded size"));
    }
    Ok(content)
}

/// The uncompressed size a compressed blob's frame claims (for `jl
/// stats`; never trusted for anything else).
pub fn claimed_size(path: &Path) -> Option<u64> {
    let mut header = [0u8; 18];
    let n = File::open(path).ok()?.read(&mut header).ok()?;
    zstd::zstd_safe::get_frame_content_size(&header[..n])
        .ok()
        .flatten()
}

/// Reads a file from a position of its own, leaving the descriptor's
/// offset alone (a verified blob is read again from its start).
struct Positional<'a> {
    file: &'a File,
    at: u64,
}

impl Read for Positional<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Yields exactly `left` more bytes of `inner`, or fails.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut more = [0u8; 1];
            return match self.inner.read(&mut more)? {
                0 => Ok(0),
                _ => Err(invalid("holds more than its recorded size")),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(invalid("ends before its recorded size"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("compressed blob {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(data: &[u8], level: i32) -> Option<tempfile::NamedTempFile> {
        let dir = tempfile::tempdir().unwrap().keep();
        let mut raw = tempfile::tempfile_in(&dir).unwrap();
        raw.write_all(data).unwrap();
        compress(&raw, data.len() as u64, level, &dir).unwrap()
    }

    fn unpack(file: &File, size: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        reader(file, size)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn text_shrinks_and_reads_back_noise_and_small_blobs_stay_raw() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|n| format!("feature {n}: {}\n", n % 97).into_bytes())
            .collect();
        let tmp = packed(&text, DEFAULT_LEVEL).expect("text is compressed");
        let stored = tmp.as_file().metadata().unwrap().len();
        assert!(stored * 3 < text.len() as u64, "{stored} of {}", text.len());
        assert_eq!(unpack(tmp.as_file(), text.len() as u64).unwrap(), text);
        assert_eq!(
            claimed_size(tmp.path()),
            Some(text.len() as u64),
            "the frame says its size"
        );
        let mut noise = vec![0u8; 100_000];
        blake3::Hasher::new()
            .update(b"noise")
            .finalize_xof()
            .fill(&mut noise);
        assert!(packed(&noise, DEFAULT_LEVEL).is_none(), "noise stays raw");
        assert!(
            packed(&text[..500], DEFAULT_LEVEL).is_none(),
            "small stays raw"
        );
        assert!(packed(&text, 0).is_none(), "level 0 is off");
    }

    #[test]
    fn a_frame_is_read_to_exactly_the_recorded_size() {
        let text = b"abcabcabc".repeat(1000);
        let tmp = packed(&text, 3).unwrap();
        let n = text.len() as u64;
        // A frame longer or shorter than the entry says is refused, by
        // the stream and by the one-call reader.
        assert!(unpack(tmp.as_file(), n - 1).is_err());
        assert!(unpack(tmp.as_file(), n + 1).is_err());
        assert!(super::unpack(tmp.as_file(), n - 1).is_err());
        assert!(super::unpack(tmp.as_file(), n + 1).is_err());
        assert_eq!(super::unpack(tmp.as_file(), n).unwrap(), text);
        // A truncated frame, garbage, and an empty file are refused.
        let whole = std::fs::read(tmp.path()).unwrap();
        let cut = tempfile::NamedTempFile::new().unwrap();
        for bad in [&whole[..whole.len() / 2], b"not a zstd frame at all", b""] {
            std::fs::write(cut.path(), bad).unwrap();
            assert!(unpack(cut.as_file(), n).is_err());
            assert!(super::unpack(cut.as_file(), n).is_err());
        }
    }
}
