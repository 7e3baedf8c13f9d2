//! A real single-node Slurm on 127.0.0.1 (root only: it installs Debian's
//! slurm-wlm and munge and starts their daemons): an array job shards a
//! map with `--shard auto`, and a gather runs nothing.

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

/// munged, slurmctld and slurmd, stopped on drop.
struct Slurm;

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

fn stop_daemons() {
    let _ = Command::new("scontrol")
        .arg("shutdown")
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("pkill")
        .args(["-x", "slurmctld|slurmd|slurmstepd"])
        .status();
    wait_for(|| !succeeds("pgrep -x 'slurmctld|slurmd'"));
}

impl Slurm {
    /// A machine image can keep a stale munged.pid or daemons and job
    /// state from an earlier run: each is checked, not assumed.
    fn start() -> Slurm {
        installed("slurmctld", "slurm-wlm");
        installed("munged", "munge");
        stop_daemons();
        sh("mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge");
        if !succeeds("munge -n | unmunge") {
            sh("rm -f /run/munge/munged.pid && su -s /bin/sh munge -c '/usr/sbin/munged --force'");
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
        Slurm
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        stop_daemons();
    }
}

#[test]
fn a_slurm_array_shards_a_map_and_the_gather_runs_nothing() {
    if !crate::util::as_root("install and start Slurm") {
        return;
    }
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
