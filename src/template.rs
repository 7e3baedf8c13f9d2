//! A map's command template: GNU parallel's placeholders, and quoting
//! where a shell reads them.
//!
//! `{}` `{.}` `{/}` `{//}` `{/.}` mean what they mean to GNU parallel
//! (`{//}` is POSIX `dirname`, `{.}` drops an extension that holds no `/`
//! or `.`, so `.hidden` loses it all). Inside the script of `sh -c`
//! (bash, dash, zsh, ksh, mksh, busybox sh) a substitution is quoted for
//! the shell, so a file named `a$(touch x).jpg` is one word there and
//! never code; in every other argument it is substituted raw, because no
//! shell reads it.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// A checked template: its words, and which one (if any) is a shell's
/// `-c` script.
#[derive(Clone, Debug)]
pub struct Template {
    words: Vec<OsString>,
    script: Option<usize>,
}

/// What one job substitutes.
#[derive(Clone, Copy, Debug)]
pub struct Job<'a> {
    pub item: &'a [u8],
    /// `{#}`: the item's line number in the input.
    pub seq: u64,
    /// `{%}`: the worker slot the job holds; `None` leaves `{%}` as it
    /// is, as in the key (a slot picks a resource, not a result).
    pub slot: Option<usize>,
}

impl Template {
    pub fn new(words: Vec<OsString>) -> Template {
        let script = shell_script(&words);
        Template { words, script }
    }

    /// The program word, when it holds no placeholder (so it can be
    /// resolved once for every job).
    pub fn fixed_program(&self) -> Option<&OsString> {
        let program = self.words.first()?;
        (!has_placeholder(program.as_bytes())).then_some(program)
    }

    /// The command line of one job: placeholders substituted, or the item
    /// appended when the template has none.
    pub fn command(&self, job: Job<'_>) -> Vec<OsString> {
        let mut any = false;
        let mut argv: Vec<OsString> = self
            .words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let quote = self.script == Some(i);
                match expand(w.as_bytes(), job, quote) {
                    Some(x) => {
                        any = true;
                        OsString::from_vec(x)
                    }
                    None => w.clone(),
                }
            })
            .collect();
        if !any {
            argv.push(OsString::from_vec(job.item.to_vec()));
        }
        argv
    }
}

/// A path option (`-i`, `-o`) with its placeholders substituted raw.
pub fn path(path: &Path, job: Job<'_>) -> PathBuf {
    match expand(path.as_os_str().as_bytes(), job, false) {
        Some(x) => PathBuf::from(OsString::from_vec(x)),
        None => path.to_path_buf(),
    }
}

const PLACEHOLDERS: [&[u8]; 7] = [b"{//}", b"{/.}", b"{/}", b"{.}", b"{#}", b"{%}", b"{}"];

fn has_placeholder(word: &[u8]) -> bool {
    PLACEHOLDERS
        .iter()
        .any(|p| word.windows(p.len()).any(|w| w == *p))
}

/// Substitutes the placeholders of one word; `None` when it has none.
fn expand(word: &[u8], job: Job<'_>, quote: bool) -> Option<Vec<u8>> {
    if !word.contains(&b'{') {
        return None;
    }
    let item = job.item;
    let base = basename(item);
    let values: [Vec<u8>; 7] = [
        dirname(item),
        without_extension(base).to_vec(),
        base.to_vec(),
        without_extension(item).to_vec(),
        job.seq.to_string().into_bytes(),
        job.slot
            .map_or_else(|| b"{%}".to_vec(), |slot| slot.to_string().into_bytes()),
        item.to_vec(),
    ];
    let mut out = Vec::with_capacity(word.len() + item.len());
    let mut i = 0;
    let mut found = false;
    'scan: while i < word.len() {
        if word[i] == b'{' {
            for (pat, value) in PLACEHOLDERS.iter().zip(&values) {
                if word[i..].starts_with(pat) {
                    if quote {
                        out.extend(shell_quoted(value));
                    } else {
                        out.extend_from_slice(value);
                    }
                    i += pat.len();
                    found = true;
                    continue 'scan;
                }
            }
        }
        out.push(word[i]);
        i += 1;
    }
    found.then_some(out)
}

/// `{/}`: everything after the last `/` (empty for `dir/`).
fn basename(item: &[u8]) -> &[u8] {
    match item.iter().rposition(|&b| b == b'/') {
        Some(p) => &item[p + 1..],
        None => item,
    }
}

/// `{//}`: POSIX `dirname` (`a//b` is `a`, `a/` is `.`, `/x` is `/`).
fn dirname(item: &[u8]) -> Vec<u8> {
    let trim = |s: &[u8]| -> usize { s.iter().rposition(|&b| b != b'/').map_or(0, |p| p + 1) };
    if item.is_empty() {
        return b".".to_vec();
    }
    let end = trim(item);
    if end == 0 {
        return b"/".to_vec();
    }
    match item[..end].iter().rposition(|&b| b == b'/') {
        None => b".".to_vec(),
        Some(slash) => match trim(&item[..=slash]) {
            0 => b"/".to_vec(),
            kept => item[..kept].to_vec(),
        },
    }
}

/// `{.}`: without a final `.ext` that holds no `/` or `.` (so `.hidden`
/// becomes empty and `dir.d/noext` stays whole).
fn without_extension(s: &[u8]) -> &[u8] {
    match s.iter().rposition(|&b| b == b'.' || b == b'/') {
        Some(p) if s[p] == b'.' => &s[..p],
        _ => s,
    }
}

/// `value` as one shell word: as is when it holds only characters no
/// shell treats specially, else in single quotes (`'\''` for a quote).
fn shell_quoted(value: &[u8]) -> Vec<u8> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_./,:+@%-".contains(&b) || b >= 0x80;
    if !value.is_empty() && value.iter().all(|&b| plain(b)) {
        return value.to_vec();
    }
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(b'\'');
    for &b in value {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The index of the script in `sh -c SCRIPT ...` (any POSIX shell, also
/// `busybox sh`, with options before the script such as `-ec` or
/// `-o pipefail`), if the template runs one.
fn shell_script(words: &[OsString]) -> Option<usize> {
    const SHELLS: [&[u8]; 9] = [
        b"sh", b"bash", b"dash", b"zsh", b"ksh", b"mksh", b"ash", b"yash", b"posh",
    ];
    let program = basename(words.first()?.as_bytes());
    let mut i = 1;
    if program == b"busybox" {
        if basename(words.get(1)?.as_bytes()) != b"sh" {
            return None;
        }
        i = 2;
    } else if !SHELLS.contains(&program) {
        return None;
    }
    let mut command = false;
    while let Some(word) = words.get(i) {
        let w = word.as_bytes();
        i += 1;
        match w {
            b"--" | b"-" => break,
            _ if w.starts_with(b"--") => {
                // bash's long options; two take a value.
                if w == b"--rcfile" || w == b"--init-file" {
                    i += 1;
                }
            }
            [b'-' | b'+', flags @ ..] if !flags.is_empty() => {
                command |= flags.contains(&b'c');
                // -o NAME (and zsh's -O NAME) take the next word.
                if flags.ends_with(b"o") || flags.ends_with(b"O") {
                    i += 1;
                }
            }
            _ => {
                i -= 1;
                break;
            }
        }
    }
    (command && i < words.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(word: &str, item: &str) -> String {
        let job = Job {
            item: item.as_bytes(),
            seq: 7,
            slot: Some(2),
        };
        String::from_utf8(expand(word.as_bytes(), job, false).unwrap_or_else(|| b"-".to_vec()))
            .unwrap()
    }

    #[test]
    fn placeholders_follow_gnu_parallel() {
        let rows = [
            ("{}", "dir/a.b.jpg", "dir/a.b.jpg"),
            ("{.}", "dir/a.b.jpg", "dir/a.b"),
            ("{/}", "dir/a.b.jpg", "a.b.jpg"),
            ("{//}", "dir/a.b.jpg", "dir"),
            ("{/.}", "dir/a.b.jpg", "a.b"),
            ("{.}", "dir.d/noext", "dir.d/noext"),
            ("{.}", ".hidden", ""),
            ("{.}", "dir/.hidden", "dir/"),
            ("{/.}", "dir/.hidden", ""),
            ("{.}", "file.", "file"),
            ("{//}", "noslash", "."),
            ("{//}", "a//b", "a"),
            ("{//}", "a/", "."),
            ("{//}", "dir/", "."),
            ("{//}", "a/b/", "a"),
            ("{//}", "/", "/"),
            ("{//}", "//a", "/"),
            ("{/}", "dir/", ""),
            ("{/.}", "noslash", "noslash"),
            ("{//}", "/top", "/"),
            ("{.}", "my file.txt", "my file"),
            ("{#}", "x", "7"),
            ("{%}", "x", "2"),
            ("gpu{%}", "x", "gpu2"),
            ("pre-{/.}.out", "d/f.in", "pre-f.out"),
            ("plain", "x", "-"),
            ("{}{}", "ab", "abab"),
        ];
        for (word, item, want) in rows {
            assert_eq!(x(word, item), want, "{word} on {item}");
        }
    }

    fn words(w: &[&str]) -> Vec<OsString> {
        w.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_script_of_a_shell_is_found() {
        let cases: [(&[&str], Option<usize>); 9] = [
            (&["sh", "-c", "echo {}"], Some(2)),
            (&["/bin/bash", "-ec", "echo {}", "b"], Some(2)),
            (&["bash", "-o", "pipefail", "-c", "x {}"], Some(4)),
            (&["busybox", "sh", "-c", "x"], Some(3)),
            (&["zsh", "--norc", "-c", "x"], Some(3)),
            (&["sh", "script.sh", "{}"], None),
            (&["python3", "-c", "print('{}')"], None),
            (&["sh", "-c"], None),
            (&["sh", "-e", "--", "f"], None),
        ];
        for (w, want) in cases {
            assert_eq!(shell_script(&words(w)), want, "{w:?}");
        }
    }

    #[test]
    fn a_name_is_one_word_in_a_script_and_raw_elsewhere() {
        let t = Template::new(words(&["sh", "-c", "echo got: {}", "sh", "{}"]));
        let job = Job {
            item: b"a$(touch x)'.jpg",
            seq: 1,
            slot: Some(1),
        };
        let argv = t.command(job);
        assert_eq!(argv[2], "echo got: 'a$(touch x)'\\''.jpg'");
        assert_eq!(argv[4], "a$(touch x)'.jpg");
        let plain = Job {
            item: b"dir/a.jpg",
            ..job
        };
        assert_eq!(t.command(plain)[2], "echo got: dir/a.jpg");
    }
}
