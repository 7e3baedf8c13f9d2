//! The test environment: a temp directory with its own store, and helpers
//! to run the built `jl` binary in it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("store");
        TestEnv { dir, store }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: impl AsRef<Path>, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Writes a file with mode 000 (unreadable but to root).
    pub fn write_unreadable(&self, rel: impl AsRef<Path>, content: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write(rel, content);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        path
    }

    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// `jl` in the test directory with this env's store and no stdin.
    pub fn jl(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jl"));
        cmd.current_dir(self.root())
            .env("JL_STORE", &self.store)
            .env_remove("JL_LOG")
            .env_remove("JL_MAX_SIZE")
            .env_remove("MAKEFLAGS")
            .env_remove("CARGO_MAKEFLAGS")
            .stdin(Stdio::null());
        for aws in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "JL_S3_ENDPOINT",
            "AZURE_STORAGE_CONNECTION_STRING",
            "AZURE_STORAGE_ACCOUNT",
            "AZURE_STORAGE_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
        ] {
            cmd.env_remove(aws);
        }
        cmd
    }

    /// `jl` run as user nobody, as [`TestEnv::jl`] otherwise (root only:
    /// for permissions that root would ignore). The binary is copied into
    /// the test dir, which is opened to everyone, so nobody can run it
    /// wherever the checkout lives.
    pub fn jl_as_nobody(&self) -> Command {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.path("jl-for-nobody");
        if !bin.exists() {
            std::fs::copy(env!("CARGO_BIN_EXE_jl"), &bin).unwrap();
            let open = std::fs::Permissions::from_mode(0o777);
            std::fs::set_permissions(self.root(), open).unwrap();
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin)
            .current_dir(self.root())
            .env("JL_STORE", &self.store)
            .env_remove("JL_LOG")
            .env_remove("JL_MAX_SIZE")
            .stdin(Stdio::null());
        cmd
    }

    /// `jl` as a user whom file permissions bind: nobody when the tests
    /// run as root, else the current user.
    pub fn jl_unprivileged(&self) -> Command {
        if is_root() {
            self.jl_as_nobody()
        } else {
            self.jl()
        }
    }

    /// Runs `jl ARGS...` and returns its output.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.jl().args(args).output().expect("jl runs")
    }

    /// Runs `jl ARGS...` feeding `input` on stdin (a pipe).
    pub fn run_with_stdin<S: AsRef<OsStr>>(&self, args: &[S], input: &[u8]) -> Output {
        spawn_fed(self.jl().args(args), input)
            .wait_with_output()
            .unwrap()
    }

    /// How many times the counter named `name` was bumped by [`counted`].
    pub fn count(&self, name: &str) -> usize {
        std::fs::read_to_string(self.path(name))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// Files under the store's `actions/` (committed entries).
    pub fn entries(&self) -> Vec<PathBuf> {
        files_under(&self.store.join("actions"))
    }

    pub fn blobs(&self) -> Vec<PathBuf> {
        files_under(&self.store.join("objects"))
    }
}

/// Starts `cmd` with its output piped and `input` written to its stdin by
/// a thread (so a child that prints before reading cannot deadlock).
pub fn spawn_fed(cmd: &mut Command, input: &[u8]) -> std::process::Child {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    child
}

pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `jl run -- sh -c SCRIPT sh ARGS...` where the script first bumps the
/// counter file `count` (in the test dir) and then does `body`.
pub fn counted<'a>(body: &'a str, args: &[&'a str]) -> Vec<String> {
    counted_with(&[], body, args)
}

/// As [`counted`], with jl `options` between `run` and `--`.
pub fn counted_with(options: &[&str], body: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["run".to_string()];
    v.extend(options.iter().map(|s| s.to_string()));
    v.extend([
        "--".to_string(),
        "sh".to_string(),
        "-c".to_string(),
        format!("echo x >> count; {body}"),
        "sh".to_string(),
    ]);
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Says on the terminal that a test cannot run here and why. Written to
/// the process's stderr directly, past the test harness's capture, so the
/// skip shows in a plain `cargo test` and is never mistaken for a pass.
pub fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {}: {why}", thread_name());
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("a test").to_owned()
}

/// Fails naming the whole text when `text` does not say `needle`.
#[track_caller]
pub fn assert_says(text: &str, needle: &str) {
    assert!(text.contains(needle), "expected {needle:?} in:\n{text}");
}

pub fn is_root() -> bool {
    rustix_uid() == 0
}

fn rustix_uid() -> u32 {
    // `id -u` keeps the tests free of unsafe code and extra crates.
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(1)
}

/// A small tmpfs mounted at a path for the life of the guard (root only:
/// the way to get a read-only or full filesystem that root cannot bypass).
pub struct Mount {
    pub path: PathBuf,
}

impl Mount {
    /// Mounts a tmpfs of `size` (e.g. "1m") with extra `options` ("ro").
    pub fn tmpfs(path: &Path, size: &str, options: &str) -> Mount {
        std::fs::create_dir_all(path).unwrap();
        let mut opts = format!("size={size}");
        if !options.is_empty() {
            opts = format!("{opts},{options}");
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount tmpfs at {}", path.display());
        Mount {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Makes `dir` read-only for jl: a read-only tmpfs as root (root ignores
/// permission bits), mode 0500 otherwise.
pub fn read_only_dir(dir: &Path) -> Option<Mount> {
    if is_root() {
        Some(Mount::tmpfs(dir, "1m", "ro,mode=0700"))
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap();
        None
    }
}

/// The path of `program` (also looked for in /usr/sbin). Tests never
/// install anything: `.ci/run` does, and a missing program fails the test
/// saying which Debian `package` has it.
pub fn installed(program: &str, package: &str) -> PathBuf {
    found(program).unwrap_or_else(|| {
        panic!("{program} is needed: apt-get install {package} (.ci/run installs it)")
    })
}

/// The path of a server the test needs, or `None` after saying the test
/// is skipped (on a machine without it; `.ci/run` installs it).
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub fn server(program: &str, from: &str) -> Option<PathBuf> {
    let path = found(program);
    if path.is_none() {
        skip(&format!(
            "{program} is not installed ({from}; .ci/run installs it)"
        ));
    }
    path
}

fn found(program: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
