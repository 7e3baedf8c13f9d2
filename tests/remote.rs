//! The remote cache against a real nginx (WebDAV PUT) and a real Redis on
//! 127.0.0.1: two local stores stand for two machines.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::{TestEnv, assert_says, spawn_fed, stderr, stdout};

/// nginx serving PUT/GET from a temp dir on a free loopback port; stopped
/// on drop.
struct Nginx {
    dir: tempfile::TempDir,
    url: String,
}

impl Nginx {
    fn start() -> Option<Nginx> {
        let nginx = crate::util::server("nginx", "apt-get install nginx-light")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
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
        let status = Command::new(nginx)
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-p")
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .expect("nginx runs");
        assert!(status.success(), "nginx started");
        Some(Nginx {
            url: format!("http://127.0.0.1:{port}/jl"),
            dir,
        })
    }

    fn files(&self, sub: &str) -> Vec<PathBuf> {
        crate::util::files_under(&self.dir.path().join("data/jl").join(sub))
    }
}

/// What the shared tests need of a server.
trait Server {
    fn url(&self) -> &str;
    /// How many entries and blobs it holds.
    fn counts(&self) -> (usize, usize);
    /// Replaces every blob's content (`None`: deletes every blob).
    fn rewrite_blobs(&self, content: Option<&str>);
    fn stop(&self);
}

impl Server for Nginx {
    fn url(&self) -> &str {
        &self.url
    }

    fn counts(&self) -> (usize, usize) {
        (self.files("ac").len(), self.files("cas").len())
    }

    fn rewrite_blobs(&self, content: Option<&str>) {
        for blob in self.files("cas") {
            match content {
                Some(c) => std::fs::write(blob, c).unwrap(),
                None => std::fs::remove_file(blob).unwrap(),
            }
        }
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

/// redis-server on a free loopback port, without persistence; stopped on
/// drop.
struct Redis {
    dir: tempfile::TempDir,
    port: u16,
    url: String,
}

impl Redis {
    fn start() -> Option<Redis> {
        let server = crate::util::server("redis-server", "apt-get install redis-server")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let status = Command::new(server)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--daemonize", "yes"])
            .arg("--pidfile")
            .arg(dir.path().join("redis.pid"))
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .status()
            .unwrap();
        assert!(status.success(), "redis started");
        let redis = Redis {
            url: format!("redis://127.0.0.1:{port}/0"),
            dir,
            port,
        };
        for _ in 0..200 {
            if redis.cli(&["ping"]).trim() == "PONG" {
                return Some(redis);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("redis never answered");
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(crate::util::installed("redis-cli", "redis-tools"))
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        stdout(&out)
    }

    fn keys(&self, pattern: &str) -> Vec<String> {
        let keys = self.cli(&["--scan", "--pattern", pattern]);
        keys.lines().map(String::from).collect()
    }
}

impl Server for Redis {
    fn url(&self) -> &str {
        &self.url
    }

    fn counts(&self) -> (usize, usize) {
        (self.keys("jl:ac/*").len(), self.keys("jl:cas/*").len())
    }

    fn rewrite_blobs(&self, content: Option<&str>) {
        for key in self.keys("jl:cas/*") {
            match content {
                Some(c) => self.cli(&["set", &key, c]),
                None => self.cli(&["del", &key]),
            };
        }
    }

    fn stop(&self) {
        if self.dir.path().join("redis.pid").exists() {
            self.cli(&["shutdown", "nosave"]);
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server process a test started: killed on `stop` and on drop.
struct Process(std::sync::Mutex<Option<std::process::Child>>);

impl Process {
    fn new(child: std::process::Child) -> Process {
        Process(std::sync::Mutex::new(Some(child)))
    }

    fn stop(&self) {
        if let Some(mut child) = self.0.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// moto's S3 API server on a free loopback port, in memory, with a bucket
/// `jlbucket`; jl uses it under the prefix `team/`. Stopped on drop.
struct Moto {
    process: Process,
    port: u16,
    url: String,
}

impl Moto {
    fn start() -> Option<Moto> {
        let moto = crate::util::server("moto_server", "pip install 'moto[server]'")?;
        let port = free_port();
        let child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let moto = Moto {
            process: Process::new(child),
            port,
            url: format!("s3://jlbucket/team?endpoint=http://127.0.0.1:{port}"),
        };
        for _ in 0..600 {
            if moto.boto("s3.create_bucket(Bucket='jlbucket')").is_some() {
                return Some(moto);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto never answered");
    }

    /// Runs python `code` with `s3`, a boto3 client of this server;
    /// returns what it printed, or `None` when it failed.
    fn boto(&self, code: &str) -> Option<String> {
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{}', region_name='us-east-1')\n{code}",
            self.port
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap();
        out.status.success().then(|| stdout(&out))
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self.boto(&format!(
            "for o in s3.list_objects_v2(Bucket='jlbucket', Prefix='{prefix}').get('Contents', []): print(o['Key'])"
        ));
        listed.unwrap().lines().map(String::from).collect()
    }
}

impl Server for Moto {
    fn url(&self) -> &str {
        &self.url
    }

    fn counts(&self) -> (usize, usize) {
        (self.keys("team/ac/").len(), self.keys("team/cas/").len())
    }

    fn rewrite_blobs(&self, content: Option<&str>) {
        for key in self.keys("team/cas/") {
            let code = match content {
                Some(c) => format!("s3.put_object(Bucket='jlbucket', Key='{key}', Body={c:?})"),
                None => format!("s3.delete_object(Bucket='jlbucket', Key='{key}')"),
            };
            self.boto(&code).unwrap();
        }
    }

    fn stop(&self) {
        self.process.stop();
    }
}

/// Azurite's Blob service on a free loopback port, its data in a temp dir,
/// with a container `jlcache`; jl uses it under the prefix `team/`. Stopped on
/// drop.
struct Azurite {
    process: Process,
    _dir: tempfile::TempDir,
    endpoint: String,
    url: String,
}

/// Azurite's well-known development account.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl Azurite {
    fn start() -> Option<Azurite> {
        let azurite = crate::util::server("azurite-blob", "npm install -g azurite")?;
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(azurite)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(dir.path())
            .args(["--silent", "--skipApiVersionCheck", "--disableTelemetry"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}/devstoreaccount1");
        let azurite = Azurite {
            process: Process::new(child),
            _dir: dir,
            url: format!("azblob://jlcache/team?endpoint={endpoint}"),
            endpoint,
        };
        let mut last = Err(String::new());
        for _ in 0..600 {
            last = azurite.call("PUT", "jlcache?restype=container", None);
            if last.is_ok() {
                return Some(azurite);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("azurite never made the container: {last:?}");
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>) -> Result<String, String> {
        azure_call(&self.endpoint, method, path, body)
    }

    fn names(&self, prefix: &str) -> Vec<String> {
        let listed = self
            .call(
                "GET",
                &format!("jlcache?restype=container&comp=list&prefix={prefix}"),
                None,
            )
            .unwrap();
        let names = listed.split("<Name>").skip(1);
        names
            .map(|n| n.split("</Name>").next().unwrap().to_string())
            .collect()
    }
}

impl Server for Azurite {
    fn url(&self) -> &str {
        &self.url
    }

    fn counts(&self) -> (usize, usize) {
        (self.names("team/ac/").len(), self.names("team/cas/").len())
    }

    fn rewrite_blobs(&self, content: Option<&str>) {
        for name in self.names("team/cas/") {
            let path = format!("jlcache/{name}");
            match content {
                Some(c) => self.call("PUT", &path, Some(c)),
                None => self.call("DELETE", &path, None),
            }
            .unwrap();
        }
    }

    fn stop(&self) {
        self.process.stop();
    }
}

/// A request to `path` below an Azure account's `endpoint`, signed with
/// Azurite's development key; the body it answered with, or its status.
fn azure_call(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<String, String> {
    use reqsign_core::SignRequest;
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("{endpoint}/{path}"))
        .header("x-ms-version", "2021-08-06");
    if let Some(body) = body {
        request = request
            .header("x-ms-blob-type", "BlockBlob")
            .header("content-length", body.len().to_string());
    }
    let (mut parts, ()) = request.body(()).unwrap().into_parts();
    let credential =
        reqsign_azure_storage::Credential::with_shared_key("devstoreaccount1", AZURITE_KEY);
    let signer = reqsign_azure_storage::RequestSigner::new();
    let context = reqsign_core::Context::new();
    {
        let signing = signer.sign_request(&context, &mut parts, Some(&credential), None);
        let mut signing = std::pin::pin!(signing);
        let mut waker = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(signed) = signing.as_mut().poll(&mut waker) else {
            panic!("signing waited");
        };
        signed.unwrap();
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let response = agent
        .run(http::Request::from_parts(
            parts,
            body.unwrap_or("").as_bytes(),
        ))
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(format!("HTTP {status}: {text}"))
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// moto's S3 answers signed requests only (any key pair will do), Azurite
/// those signed with its development key; the other servers ignore these.
const TEST_KEYS: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AZURE_STORAGE_ACCOUNT", "devstoreaccount1"),
    ("AZURE_STORAGE_KEY", AZURITE_KEY),
];

/// `jl ARGS...` in `env` with its own store (a "machine") and the remote.
fn on(env: &TestEnv, store: &str, remote: &str, args: &[&str]) -> std::process::Output {
    env.jl()
        .env("JL_STORE", env.path(store))
        .env("JL_REMOTE", remote)
        .envs(TEST_KEYS)
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

fn two_machines_share_results(server: &dyn Server) {
    let env = TestEnv::new();
    let url = server.url();
    let first = on(&env, "a", url, &RUN);
    assert_eq!(stdout(&first), "1\n2\n3\n");
    assert_eq!(
        server.counts(),
        (1, 2),
        "the entry and its two blobs uploaded"
    );
    let stats = on(&env, "a", url, &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(
        stats["misses"], 1,
        "counted on a store the remote miss created"
    );
    assert_eq!(stats["remote"]["misses"], 1);
    let second = on(&env, "b", url, &RUN);
    assert_eq!(stdout(&second), "1\n2\n3\n");
    assert_eq!(stderr(&second), "err\n");
    assert_eq!(env.count("count"), 1, "machine b executed nothing");
    let stats = on(&env, "b", url, &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["remote"]["hits"], 1);

    // The server evicted the blobs: a miss, a run, a re-upload.
    server.rewrite_blobs(None);
    let third = on(&env, "c", url, &RUN);
    assert_eq!(stdout(&third), "1\n2\n3\n");
    assert_eq!(env.count("count"), 2);
    assert_eq!(server.counts(), (1, 2), "uploaded again");

    // A corrupted blob on the server is never replayed; the remote that
    // served it is an error, warned about once and not asked again.
    server.rewrite_blobs(Some("1\n2\n4\n"));
    let fourth = on(&env, "d", url, &RUN);
    assert_eq!(stdout(&fourth), "1\n2\n3\n");
    assert_eq!(env.count("count"), 3);
    assert_says(&stderr(&fourth), "does not match its digest");
    let stats = on(&env, "d", url, &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["remote"]["errors"], 1);
}

#[test]
fn two_machines_share_results_through_nginx() {
    if let Some(server) = Nginx::start() {
        two_machines_share_results(&server);
    }
}

#[test]
fn two_machines_share_results_through_an_s3_api() {
    if let Some(server) = Moto::start() {
        two_machines_share_results(&server);
    }
}

#[test]
fn two_machines_share_results_through_azure_blob() {
    if let Some(server) = Azurite::start() {
        two_machines_share_results(&server);
    }
}

#[test]
fn two_machines_share_results_through_redis() {
    if let Some(server) = Redis::start() {
        two_machines_share_results(&server);
    }
}

#[test]
fn a_compressed_blob_travels_uncompressed() {
    // Kept compressed in each store, the output crosses the remote as the
    // command printed it: the remote's layout and names do not change.
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start() else {
        return;
    };
    let run = [
        "run",
        "--",
        "sh",
        "-c",
        "echo x >> count; yes 'feature 0.25 0.50' | head -n 20000",
        "sh",
    ];
    let first = on(&env, "a", &nginx.url, &run);
    assert_eq!(first.stdout.len(), 20_000 * "feature 0.25 0.50\n".len());
    let packed = |store: &str| {
        crate::util::files_under(&env.path(store).join("objects"))
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "zst"))
            .count()
    };
    assert_eq!(packed("a"), 1);
    let on_server: Vec<Vec<u8>> = nginx
        .files("cas")
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert!(
        on_server.contains(&first.stdout),
        "the server holds the raw output"
    );
    let second = on(&env, "b", &nginx.url, &run);
    assert!(second.stdout == first.stdout);
    assert_eq!(env.count("count"), 1, "machine b executed nothing");
    assert_eq!(packed("b"), 1, "kept compressed on b too");
}

#[test]
fn a_read_only_remote_is_used_but_never_written() {
    if let Some(server) = Nginx::start() {
        read_only_is_used_but_never_written(&server);
    }
}

fn a_remote_that_dies_mid_map_costs_one_warning(server: &dyn Server) {
    let env = TestEnv::new();
    let items: String = (1..=40).map(|i| format!("{i}\n")).collect();
    let map = |store: &str| {
        let mut map = env.jl();
        map.env("JL_STORE", env.path(store))
            .env("JL_REMOTE", server.url())
            .envs(TEST_KEYS)
            .args([
                "map",
                "-q",
                "-j2",
                "--",
                "sh",
                "-c",
                "echo x >> count; sleep 0.05; echo item $1",
                "sh",
            ]);
        spawn_fed(&mut map, items.as_bytes())
    };
    let child = map("a");
    // Stopped once the map is under way (some jobs ran, most have not).
    let started = std::time::Instant::now();
    while env.count("count") < 4 && started.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    server.stop();
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
fn nginx_dying_mid_map_costs_one_warning() {
    if let Some(server) = Nginx::start() {
        a_remote_that_dies_mid_map_costs_one_warning(&server);
    }
}

#[test]
fn an_s3_api_dying_mid_map_costs_one_warning() {
    if let Some(server) = Moto::start() {
        a_remote_that_dies_mid_map_costs_one_warning(&server);
    }
}

#[test]
fn azure_blob_dying_mid_map_costs_one_warning() {
    if let Some(server) = Azurite::start() {
        a_remote_that_dies_mid_map_costs_one_warning(&server);
    }
}

#[test]
fn redis_dying_mid_map_costs_one_warning() {
    if let Some(server) = Redis::start() {
        a_remote_that_dies_mid_map_costs_one_warning(&server);
    }
}

#[test]
fn four_slurm_shards_then_a_gather_that_runs_nothing() {
    let env = TestEnv::new();
    let Some(nginx) = Nginx::start() else {
        return;
    };
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
    assert_says(&stderr(&out), "no job-array index");
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

/// A server on a loopback port that answers every connection with
/// `reply` (or, for `None`, accepts and never answers).
fn bad_server(reply: Option<&'static str>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            if let Some(reply) = reply {
                use std::io::{Read, Write};
                let mut stream = stream;
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = stream.write_all(reply.as_bytes());
            } else {
                held.push(stream);
            }
        }
    });
    format!("http://me:secret@127.0.0.1:{port}/jl")
}

#[test]
fn a_remote_that_answers_a_byte_at_a_time_is_cut_off_at_the_deadline() {
    // --remote-timeout bounds the whole request, body included.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Some(Ok(mut stream)) = listener.incoming().next() else {
            return;
        };
        let _ = stream.read(&mut [0u8; 4096]);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n");
        for _ in 0..40 {
            std::thread::sleep(std::time::Duration::from_millis(500));
            if stream.write_all(b"x").is_err() {
                return; // jl hung up
            }
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let env = TestEnv::new();
    let out = env
        .jl()
        .env("JL_REMOTE", format!("http://127.0.0.1:{port}/jl"))
        .args(["run", "--remote-timeout", "1s", "--", "echo", "drip"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "drip\n");
    assert!(out.status.success());
    assert_says(&stderr(&out), "jl: warning: remote cache");
    let sent = sent.load(Ordering::SeqCst);
    assert!(
        sent < 20,
        "jl took {sent} of the 40 bytes sent one per 0.5 s: it did not give up at its 1 s deadline"
    );
}

/// What a [`scripted_server`] saw: the most requests it held at once,
/// and every request line.
#[derive(Clone, Default)]
struct Seen {
    most: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Seen {
    fn most(&self) -> usize {
        self.most.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn requests(&self, method: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.starts_with(method)).count()
    }
}

/// An HTTP/1.1 server on a loopback port that keeps connections alive,
/// reads each request whole (a body by length or in chunks) and answers
/// it with what `answer` says for its request line: a delay, then a
/// status line and a body. It stores nothing.
fn scripted_server(
    answer: fn(&str) -> (std::time::Duration, &'static str, &'static str),
) -> (String, Seen) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Seen::default();
    let all = seen.clone();
    let now = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (seen, now) = (all.clone(), std::sync::Arc::clone(&now));
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).map_or(true, |n| n == 0) {
                        return;
                    }
                    let (mut length, mut chunked) = (0usize, false);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(n) = lower.strip_prefix("content-length:") {
                            length = n.trim().parse().unwrap();
                        }
                        chunked |=
                            lower.starts_with("transfer-encoding:") && lower.contains("chunked");
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if chunked {
                        loop {
                            let mut size = String::new();
                            reader.read_line(&mut size).unwrap();
                            let size = usize::from_str_radix(size.trim(), 16).unwrap();
                            let mut skip = vec![0u8; size + 2];
                            reader.read_exact(&mut skip).unwrap();
                            if size == 0 {
                                break;
                            }
                        }
                    } else {
                        reader.read_exact(&mut vec![0u8; length]).unwrap();
                    }
                    seen.lines.lock().unwrap().push(request.clone());
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.most.fetch_max(n, Ordering::SeqCst);
                    let (delay, status, body) = answer(&request);
                    std::thread::sleep(delay);
                    now.fetch_sub(1, Ordering::SeqCst);
                    let body = if request.starts_with("HEAD") {
                        ""
                    } else {
                        body
                    };
                    let reply = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                        if request.starts_with("HEAD") {
                            0
                        } else {
                            body.len()
                        }
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://127.0.0.1:{port}/jl"), seen)
}

#[test]
fn a_maps_remote_lookups_overlap_up_to_its_jobs() {
    // With 300 ms per round trip, a gather is bounded by -j, not by one
    // lookup after another (nor by the number of cores).
    let (url, seen) =
        scripted_server(|_| (std::time::Duration::from_millis(300), "404 Not Found", ""));
    let env = TestEnv::new();
    let items: String = (0..16).map(|n| format!("{n}\n")).collect();
    let out = spawn_fed(
        env.jl().env("JL_REMOTE", &url).args([
            "map",
            "-q",
            "-j8",
            "--remote-read-only",
            "--",
            "echo",
        ]),
        items.as_bytes(),
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 16);
    let most = seen.most();
    assert!(
        most >= 4,
        "at most {most} lookups were waiting on the remote at once"
    );
}

#[test]
fn a_silent_or_garbage_remote_costs_one_warning_and_one_timeout() {
    let env = TestEnv::new();
    let garbage = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot json!";
    for (name, url) in [
        ("silent", bad_server(None)),
        ("garbage", bad_server(Some(garbage))),
    ] {
        let out = env
            .jl()
            .env("JL_STORE", env.path(name))
            .env("JL_REMOTE", &url)
            .args(["run", "--remote-timeout", "1s", "--", "echo", name])
            .output()
            .unwrap();
        assert_eq!(stdout(&out), format!("{name}\n"));
        assert!(out.status.success());
        let err = stderr(&out);
        assert_eq!(
            err.matches("jl: warning: remote cache").count(),
            1,
            "{name}: {err}"
        );
        assert!(!err.contains("secret"), "credentials never printed: {err}");
    }
}

#[test]
fn a_signal_stops_a_map_waiting_on_the_remote() {
    // The server takes a minute per request; jl must not wait for it once
    // told to stop, whether it is looking up (GET) or uploading (HEAD, PUT).
    fn slow_lookups(request: &str) -> (std::time::Duration, &'static str, &'static str) {
        let slow = request.starts_with("GET");
        (
            std::time::Duration::from_secs(if slow { 60 } else { 0 }),
            "404 Not Found",
            "",
        )
    }
    fn slow_uploads(request: &str) -> (std::time::Duration, &'static str, &'static str) {
        let slow = !request.starts_with("GET");
        (
            std::time::Duration::from_secs(if slow { 60 } else { 0 }),
            "404 Not Found",
            "",
        )
    }
    type Answer = fn(&str) -> (std::time::Duration, &'static str, &'static str);
    for (signal, code, answer) in [
        ("INT", 130, slow_lookups as Answer),
        ("TERM", 143, slow_uploads as Answer),
    ] {
        let (url, seen) = scripted_server(answer);
        let env = TestEnv::new();
        let mut child = spawn_fed(
            env.jl().env("JL_REMOTE", &url).args([
                "map",
                "-q",
                "-j2",
                "--remote-timeout",
                "300s",
                "--",
                "echo",
            ]),
            b"1\n2\n3\n",
        );
        let waited = std::time::Instant::now();
        while seen.most() == 0 && waited.elapsed() < std::time::Duration::from_secs(30) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(seen.most() > 0, "{signal}: jl never reached the server");
        std::thread::sleep(std::time::Duration::from_millis(200));
        let sent = std::time::Instant::now();
        Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        // Well before the server would answer.
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if sent.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                panic!("{signal}: jl kept waiting on the remote");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(status.code(), Some(code), "{signal}");
        let out = child.wait_with_output().unwrap();
        assert!(
            !stderr(&out).contains("remote cache"),
            "{signal}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn answers_with_bodies_jl_does_not_read_leave_the_connection_sound() {
    // A 404 and a 201 both carrying a body, on kept-alive connections: the
    // next request on the same connection must not read what was left.
    fn chatty(request: &str) -> (std::time::Duration, &'static str, &'static str) {
        let zero = std::time::Duration::ZERO;
        if request.starts_with("PUT") {
            (zero, "201 Created", "stored, thank you\n")
        } else {
            (
                zero,
                "404 Not Found",
                "<html>nothing under this name</html>\n",
            )
        }
    }
    let (url, seen) = scripted_server(chatty);
    let env = TestEnv::new();
    let out = spawn_fed(
        env.jl()
            .env("JL_REMOTE", &url)
            .args(["map", "-q", "-j1", "--", "echo"]),
        b"1\n2\n3\n4\n5\n",
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(stdout(&out), "1\n2\n3\n4\n5\n");
    assert!(!stderr(&out).contains("remote cache"), "{}", stderr(&out));
    assert_eq!(seen.requests("GET"), 5);
    assert_eq!(seen.requests("PUT"), 10, "a blob and an entry per item");
    let stats = env.jl().args(["stats", "--json"]).output().unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["remote"]["errors"], 0, "{stats}");
}

#[test]
fn a_redis_remote_survives_a_map_of_thousands_of_children() {
    // Children ending by the thousand once made a Redis read fail with
    // "Interrupted system call" and turned the remote off.
    let Some(redis) = Redis::start() else {
        return;
    };
    let env = TestEnv::new();
    let items: String = (0..3000).map(|n| format!("{n}\n")).collect();
    let out = spawn_fed(
        env.jl()
            .env("JL_REMOTE", redis.url())
            .args(["map", "-q", "-j8", "--", "sh", "-c", "echo $1", "sh"]),
        items.as_bytes(),
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 3000);
    assert!(!stderr(&out).contains("remote cache"), "{}", stderr(&out));
    assert_eq!(redis.counts().0, 3000, "every entry uploaded");
}

/// The peak resident memory, in KiB, of `cmd` run to its end (measured by
/// python3's `getrusage` of its children), and its output.
fn peak_memory_kib(cmd: &Command) -> (u64, std::process::Output) {
    let mut python = Command::new("python3");
    python.arg("-c").arg(
        "import resource, subprocess, sys\n\
         r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n\
         print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
         sys.exit(r.returncode)",
    );
    python.arg(cmd.get_program()).args(cmd.get_args());
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => python.env(name, value),
            None => python.env_remove(name),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        python.current_dir(dir);
    }
    let out = python.output().unwrap();
    (stdout(&out).trim().parse().unwrap(), out)
}

#[test]
fn a_large_output_goes_through_redis_a_piece_at_a_time() {
    // 120 MB up from one machine and down to another, in bounded memory.
    let Some(redis) = Redis::start() else {
        return;
    };
    let env = TestEnv::new();
    let big = env.path("big");
    let noise = Command::new("head")
        .args(["-c", "120000000", "/dev/urandom"])
        .output()
        .unwrap();
    std::fs::write(&big, &noise.stdout).unwrap();
    for machine in ["a", "b"] {
        let mut run = env.jl();
        run.env("JL_STORE", env.path(machine))
            .env("JL_REMOTE", redis.url())
            .args(["run", "--", "cat", "big"]);
        let (kib, out) = peak_memory_kib(&run);
        assert!(out.status.success(), "{machine}: {}", stderr(&out));
        assert!(!stderr(&out).contains("remote cache"), "{}", stderr(&out));
        assert!(
            kib < 60 * 1024,
            "{machine}: jl took {} MiB for a 114 MiB output",
            kib / 1024
        );
    }
    let b = env
        .jl()
        .env("JL_STORE", env.path("b"))
        .args(["stats", "--json"])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    assert_eq!(stats["remote"]["hits"], 1, "b replayed a's result: {stats}");
    assert!(redis.keys("jl:tmp/*").is_empty(), "no temp key left");
}

/// A read-only remote is used, never written.
fn read_only_is_used_but_never_written(server: &dyn Server) {
    let env = TestEnv::new();
    on(&env, "a", server.url(), &RUN);
    assert_eq!(env.count("count"), 1);
    let uploaded = server.counts();
    assert_eq!(uploaded, (1, 2), "a writer filled the remote");
    let mut read_only = vec!["run", "--remote-read-only"];
    read_only.extend_from_slice(&RUN[1..]);
    // Used: another machine's empty store replays the remote's result.
    let hit = on(&env, "b", server.url(), &read_only);
    assert_eq!(stdout(&hit), "1\n2\n3\n");
    assert_eq!(env.count("count"), 1, "a hit from the remote");
    // Never written: a new result stays local.
    let mut other = read_only.clone();
    other[read_only.len() - 2] = "echo x >> count; echo new";
    on(&env, "b", server.url(), &other);
    assert_eq!(env.count("count"), 2);
    assert_eq!(server.counts(), uploaded, "nothing uploaded");
}

#[test]
fn an_s3_remote_read_only_and_one_that_refuses_our_credentials() {
    if let Some(server) = Moto::start() {
        read_only_is_used_but_never_written(&server);
    }
    let env = TestEnv::new();

    // An endpoint that refuses the credentials, as S3 does (403): one
    // warning, the map finishes, and the secret is never printed.
    fn refuse(_: &str) -> (std::time::Duration, &'static str, &'static str) {
        let body = "<Error><Code>InvalidAccessKeyId</Code></Error>";
        (std::time::Duration::ZERO, "403 Forbidden", body)
    }
    let (endpoint, seen) = scripted_server(refuse);
    let endpoint = endpoint.trim_end_matches("/jl");
    let out = spawn_fed(
        env.jl()
            .env("JL_STORE", env.path("c"))
            .env(
                "JL_REMOTE",
                format!("s3://jlbucket/team?endpoint={endpoint}"),
            )
            .env("AWS_ACCESS_KEY_ID", "AKIAWRONG")
            .env("AWS_SECRET_ACCESS_KEY", "TOPSECRETKEY")
            .args(["map", "-q", "-j2", "--", "echo"]),
        b"1\n2\n3\n4\n",
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "1\n2\n3\n4\n");
    let err = stderr(&out);
    assert_eq!(err.matches("remote cache").count(), 1, "{err}");
    assert_says(&err, "HTTP 403");
    assert!(!err.contains("TOPSECRETKEY"), "{err}");
    assert!(seen.requests("GET") >= 1, "jl asked the endpoint");
}

/// The code spans of the README's backend table row that starts with
/// `backend`, with the port of its example replaced by `port`.
fn readme_backend(backend: &str, example_port: &str, port: u16) -> Vec<String> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with(&format!("| {backend}")))
        .unwrap_or_else(|| panic!("README lost its {backend} row"));
    let spans = row.split('`').skip(1).step_by(2);
    spans
        .map(|span| span.replace(example_port, &port.to_string()))
        .collect()
}

#[test]
fn the_readmes_backend_table_starts_servers_jl_shares_results_through() {
    // Redis, S3 and Azure rows: their start commands, run as shown (on a
    // free port), then two machines through the URL the row shows. (The
    // HTTP row's bazel-remote is not on this machine; nginx, its other
    // server, is tested above.)
    for (backend, example_port) in [("Redis", "6379"), ("S3", "5005"), ("Azure", "10000")] {
        let port = free_port();
        let spans = readme_backend(backend, example_port, port);
        let (url, start, then) = (&spans[0], &spans[1], spans.get(2));
        let program = start.split(' ').next().unwrap();
        if crate::util::server(program, "the README's table says how").is_none() {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut server = Command::new("sh")
            .args(["-c", &format!("exec {start}")])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(up.elapsed() < std::time::Duration::from_secs(30), "{start}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if backend == "Azure" {
            // The row's container command needs the az CLI, which is not
            // on this machine: the same request, from the test's client.
            let endpoint = format!("http://127.0.0.1:{port}/devstoreaccount1");
            azure_call(&endpoint, "PUT", "jlcache?restype=container", None).unwrap();
        } else if let Some(then) = then {
            let status = Command::new("sh").args(["-c", then]).output().unwrap();
            assert!(status.status.success(), "{then}: {}", stderr(&status));
        }
        let env = TestEnv::new();
        on(&env, "a", url, &RUN);
        let b = on(&env, "b", url, &RUN);
        let _ = server.kill();
        let _ = server.wait();
        assert_eq!(stdout(&b), "1\n2\n3\n", "{backend}: {}", stderr(&b));
        assert_eq!(env.count("count"), 1, "{backend}: machine b ran nothing");
    }
}

#[test]
fn an_azure_remote_read_only_and_one_with_a_wrong_key() {
    let Some(azurite) = Azurite::start() else {
        return;
    };
    read_only_is_used_but_never_written(&azurite);
    // Another account key: Azurite refuses each request (403); one
    // warning, the map finishes, and the key is never printed.
    let env = TestEnv::new();
    let wrong = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=";
    let out = spawn_fed(
        env.jl()
            .env("JL_REMOTE", azurite.url())
            .env("AZURE_STORAGE_ACCOUNT", "devstoreaccount1")
            .env("AZURE_STORAGE_KEY", wrong)
            .args(["map", "-q", "-j2", "--", "echo"]),
        b"1\n2\n3\n4\n",
    )
    .wait_with_output()
    .unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "1\n2\n3\n4\n");
    let err = stderr(&out);
    assert_eq!(err.matches("remote cache").count(), 1, "{err}");
    assert_says(&err, "HTTP 403");
    assert!(!err.contains(wrong), "{err}");
    // A connection string alone names the account, its key and where it
    // is: the result another machine stored is replayed.
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={};",
        azurite.endpoint
    );
    let env = TestEnv::new();
    on(&env, "a", azurite.url(), &RUN);
    let ran = env.count("count");
    let b = env
        .jl()
        .env("JL_STORE", env.path("b"))
        .env("JL_REMOTE", "azblob://jlcache/team")
        .env("AZURE_STORAGE_CONNECTION_STRING", connection)
        .args(RUN)
        .output()
        .unwrap();
    assert_eq!(stdout(&b), "1\n2\n3\n", "{}", stderr(&b));
    assert_eq!(env.count("count"), ran, "machine b ran nothing");
    let stats = on(&env, "b", "", &["stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["remote"]["hits"], 1, "{stats}");
}
