//! The remote cache against a real nginx (WebDAV PUT) on 127.0.0.1: two
//! local stores stand for two machines.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{TestEnv, stderr, stdout};

/// nginx serving PUT/GET from a temp dir on a free loopback port; stopped
/// on drop.
struct Nginx {
    dir: tempfile::TempDir,
    url: String,
}

impl Nginx {
    fn start() -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let user = if crate::util::is_root() {
            "user root;"
        } else {
            ""
        };
        let conf = format!(
            "{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp;
  proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  server {{
    listen 127.0.0.1:{port};
    root {d}/data;
    log_not_found off;
    location / {{
      dav_methods PUT DELETE;
      create_full_put_path on;
      client_max_body_size 0;
    }}
  }}
}}
"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let status = Command::new(crate::util::installed("nginx", "nginx-light"))
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .expect("nginx runs");
        assert!(status.success(), "nginx started");
        Nginx {
            url: format!("http://127.0.0.1:{port}/jl"),
            dir,
        }
    }

    fn files(&self, sub: &str) -> Vec<PathBuf> {
        crate::util::files_under(&self.dir.path().join("data/jl").join(sub))
    }

    fn stop(&self) {
        let Ok(pid) = std::fs::read_to_string(self.dir.path().join("nginx.pid")) else {
            return;
        };
        let _ = Command::new("kill").arg("-QUIT").arg(pid.trim()).status();
        let pid_file = self.dir.path().join("nginx.pid");
        for _ in 0..200 {
            if !pid_file.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `jl ARGS...` in `env` with its own store (a "machine") and the remote.
fn on(env: &TestEnv, store: &str, remote: &str, args: &[&str]) -> std::process::Output {
    env.jl()
        .env("JL_STORE", env.path(store))
        .env("JL_REMOTE", remote)
        .args(args)
        .output()
        .unwrap()
}

const RUN: [&str; 6] = [
    "run",
    "--",
    "sh",
    "-c",
    "echo x >> count; seq 3; echo err >&2",
    "sh",
];

#[test]
fn two_machines_share_results_through_nginx() {
    let env = TestEnv::new();
    let nginx = Nginx::start();
    let first = on(&env, "a", &nginx.url, &RUN);
    assert_eq!(stdout(&first), "1\n2\n3\n");
    assert!(
        !nginx.files("ac").is_empty() && !nginx.files("cas").is_empty(),
        "uploaded"
    );
    let second = on(&env, "b", &nginx.url, &RUN);
    assert_eq!(stdout(&second), "1\n2\n3\n");
    assert_eq!(stderr(&second), "err\n");
    assert_eq!(env.count("count"), 1, "machine b executed nothing");
    let stats = on(&env, "b", &nginx.url, &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["remote"]["hits"], 1);

    // The server evicted the blobs: a miss, a run, a re-upload.
    for blob in nginx.files("cas") {
        std::fs::remove_file(blob).unwrap();
    }
    let third = on(&env, "c", &nginx.url, &RUN);
    assert_eq!(stdout(&third), "1\n2\n3\n");
    assert_eq!(env.count("count"), 2);
    assert!(!nginx.files("cas").is_empty(), "uploaded again");

    // A corrupted blob on the server is never replayed.
    for blob in nginx.files("cas") {
        std::fs::write(blob, "1\n2\n4\n").unwrap();
    }
    let fourth = on(&env, "d", &nginx.url, &RUN);
    assert_eq!(stdout(&fourth), "1\n2\n3\n");
    assert_eq!(env.count("count"), 3);
}

#[test]
fn a_read_only_remote_is_used_but_never_written() {
    let env = TestEnv::new();
    let nginx = Nginx::start();
    let mut args = vec!["run", "--remote-read-only"];
    args.extend_from_slice(&RUN[1..]);
    on(&env, "a", &nginx.url, &args);
    assert!(nginx.files("ac").is_empty());
}

#[test]
fn a_remote_that_dies_mid_map_costs_one_warning() {
    let env = TestEnv::new();
    let nginx = Nginx::start();
    let items: String = (1..=40).map(|i| format!("{i}\n")).collect();
    let map = |store: &str| {
        let mut child = env
            .jl()
            .env("JL_STORE", env.path(store))
            .env("JL_REMOTE", &nginx.url)
            .args([
                "map",
                "-q",
                "-j2",
                "--",
                "sh",
                "-c",
                "sleep 0.02; echo item $1",
                "sh",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(items.as_bytes())
            .unwrap();
        child
    };
    let child = map("a");
    std::thread::sleep(std::time::Duration::from_millis(300));
    nginx.stop();
    let out = child.wait_with_output().unwrap();
    let expected: String = (1..=40).map(|i| format!("item {i}\n")).collect();
    assert_eq!(stdout(&out), expected);
    assert!(out.status.success());
    let err = stderr(&out);
    assert_eq!(err.matches("remote cache").count(), 1, "{err}");
    // A remote that is down from the start: the same.
    let out = map("b").wait_with_output().unwrap();
    assert_eq!(stdout(&out), expected);
    assert_eq!(
        stderr(&out).matches("remote cache").count(),
        1,
        "{}",
        stderr(&out)
    );
}

#[test]
fn four_slurm_shards_then_a_gather_that_runs_nothing() {
    let env = TestEnv::new();
    let nginx = Nginx::start();
    let items: String = (1..=30).map(|i| format!("{i}\n")).collect();
    env.write("items.txt", &items);
    let map = |store: &str, task: Option<u64>| {
        let mut cmd = env.jl();
        cmd.env("JL_STORE", env.path(store))
            .env("JL_REMOTE", &nginx.url)
            .args(["map", "-q", "-j2", "-a", "items.txt"]);
        if let Some(task) = task {
            cmd.args(["--shard", "auto"])
                .env("SLURM_ARRAY_TASK_ID", task.to_string())
                .env("SLURM_ARRAY_TASK_COUNT", "4")
                .env("SLURM_ARRAY_TASK_MIN", "0");
        }
        cmd.args(["--", "sh", "-c", "echo x >> count; echo \"item $1\"", "sh"]);
        cmd.spawn_output()
    };
    let shards: Vec<_> = (0..4).map(|t| map(&format!("node{t}"), Some(t))).collect();
    let mut sharded = 0;
    for shard in shards {
        let out = shard.join().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        sharded += stdout(&out).lines().count();
    }
    assert_eq!(sharded, 30, "every item in exactly one shard");
    assert_eq!(env.count("count"), 30);
    let gather = map("gatherer", None).join().unwrap();
    let expected: String = (1..=30).map(|i| format!("item {i}\n")).collect();
    assert_eq!(stdout(&gather), expected, "in input order");
    assert_eq!(env.count("count"), 30, "the gather executed nothing");
}

#[test]
fn shard_auto_outside_a_job_array_is_a_clear_error() {
    let env = TestEnv::new();
    let out = env
        .jl()
        .env_remove("SLURM_ARRAY_TASK_ID")
        .args(["map", "--shard", "auto", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no job-array index"),
        "{}",
        stderr(&out)
    );
}

/// Runs a command on a thread, so several can run at once.
trait SpawnOutput {
    fn spawn_output(&mut self) -> std::thread::JoinHandle<std::process::Output>;
}

impl SpawnOutput for Command {
    fn spawn_output(&mut self) -> std::thread::JoinHandle<std::process::Output> {
        let child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::spawn(move || child.wait_with_output().unwrap())
    }
}
