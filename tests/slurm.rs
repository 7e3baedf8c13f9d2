//! A real single-node Slurm on 127.0.0.1: an array job shards a map with
//! `--shard auto`, and a gather runs nothing. It writes /etc/slurm and
//! /var/spool/slurm*, so it runs only as root with `JL_TEST_SYSTEM=1`
//! (CI sets it; .ci/run installs slurm-wlm and munge), and it stops the
//! daemons it started, by their pid files.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{TestEnv, installed, stderr, stdout};

const SLURM_CONF: &str = "ClusterName=local
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/var/spool/slurmctld/slurmctld.pid
SlurmdPidFile=/var/spool/slurmd/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
";

/// The daemons this test started, stopped on drop.
struct Slurm {
    started_munged: bool,
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "{script}: {}", stderr(&out));
}

fn succeeds(script: &str) -> bool {
    Command::new("sh")
        .args(["-c", script])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `ready` every 300 ms for up to 90 s.
fn wait_for(mut ready: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

const PID_FILES: [&str; 2] = [
    "/var/spool/slurmd/slurmd.pid",
    "/var/spool/slurmctld/slurmctld.pid",
];

/// Stops the daemon whose pid is in `pid_file`, if it runs.
fn stop_by_pid_file(pid_file: &str) {
    let Ok(pid) = std::fs::read_to_string(pid_file) else {
        return;
    };
    let pid = pid.trim().to_string();
    let _ = Command::new("kill")
        .arg(&pid)
        .stderr(Stdio::null())
        .status();
    wait_for(|| !std::path::Path::new(&format!("/proc/{pid}")).exists());
}

impl Slurm {
    /// A machine image can keep a stale munged.pid, or daemons and job
    /// state from an earlier run of this test: each is checked, not
    /// assumed.
    fn start() -> Slurm {
        installed("slurmctld", "slurm-wlm");
        installed("munged", "munge");
        PID_FILES.iter().for_each(|f| stop_by_pid_file(f));
        sh("mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge");
        let mut started_munged = false;
        if !succeeds("munge -n | unmunge") {
            sh("rm -f /run/munge/munged.pid && su -s /bin/sh munge -c '/usr/sbin/munged --force'");
            started_munged = true;
            assert!(
                wait_for(|| succeeds("munge -n | unmunge")),
                "munged did not start"
            );
        }
        sh("rm -rf /var/spool/slurmctld /var/spool/slurmd");
        sh("mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let node = format!(
            "NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN\n"
        );
        std::fs::write("/etc/slurm/slurm.conf", format!("{SLURM_CONF}{node}")).unwrap();
        sh("slurmctld && slurmd -N localhost");
        let idle = wait_for(|| {
            let state = Command::new("sinfo")
                .args(["-h", "-o", "%t"])
                .output()
                .unwrap();
            let state = stdout(&state);
            if state.contains("down") || state.contains("drain") {
                let _ = Command::new("scontrol")
                    .args(["update", "NodeName=localhost", "State=RESUME"])
                    .status();
            }
            state.contains("idle")
        });
        if !idle {
            let why = Command::new("sh")
                .args(["-c", "sinfo -N -l; tail -n 15 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log"])
                .output()
                .unwrap();
            panic!("slurm never became idle:\n{}{}", stdout(&why), stderr(&why));
        }
        Slurm { started_munged }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        PID_FILES.iter().for_each(|f| stop_by_pid_file(f));
        if self.started_munged {
            stop_by_pid_file("/run/munge/munged.pid");
        }
    }
}

#[test]
#[cfg_attr(
    not(all(jl_test_root, jl_test_system)),
    ignore = "writes /etc/slurm: needs root and JL_TEST_SYSTEM=1 (CI sets both)"
)]
fn a_slurm_array_shards_a_map_and_the_gather_runs_nothing() {
    let _slurm = Slurm::start();
    let env = TestEnv::new();
    let items: String = (1..=24).map(|i| format!("{i}\n")).collect();
    env.write("items.txt", &items);
    let job = "echo x >> count; echo \"item $1\"";
    let map = format!(
        "{} map -q -j2 --shard auto -a items.txt -- sh -c '{job}' sh > out.$SLURM_ARRAY_TASK_ID",
        env!("CARGO_BIN_EXE_jl")
    );
    let out = Command::new("sbatch")
        .args([
            "--array=0-3",
            "--wait",
            "--quiet",
            "--output=/dev/null",
            "--wrap",
            &map,
        ])
        .current_dir(env.root())
        .env("JL_STORE", &env.store)
        .output()
        .unwrap();
    assert!(out.status.success(), "sbatch: {}", stderr(&out));
    let sharded: usize = (0..4)
        .map(|t| env.read(format!("out.{t}")).lines().count())
        .sum();
    assert_eq!(sharded, 24, "every item in exactly one task");
    assert_eq!(env.count("count"), 24);
    let gather = env.run(&["map", "-q", "-a", "items.txt", "--", "sh", "-c", job, "sh"]);
    let expected: String = (1..=24).map(|i| format!("item {i}\n")).collect();
    assert_eq!(stdout(&gather), expected);
    assert_eq!(env.count("count"), 24, "the gather ran nothing");
}
