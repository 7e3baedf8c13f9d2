//! A real single-node Slurm on 127.0.0.1 (root only: it installs Debian's
//! slurm-wlm and munge and starts their daemons): an array job shards a
//! map with `--shard auto`, and a gather runs nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{TestEnv, installed, is_root, stderr, stdout};

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

impl Slurm {
    fn start() -> Slurm {
        installed("slurmctld", "slurm-wlm");
        installed("munged", "munge");
        sh("mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge");
        if !Path::new("/run/munge/munged.pid").exists() {
            sh("su -s /bin/sh munge -c /usr/sbin/munged");
        }
        sh("mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm");
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let node = format!(
            "NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=1000 State=UNKNOWN\n"
        );
        std::fs::write("/etc/slurm/slurm.conf", format!("{SLURM_CONF}{node}")).unwrap();
        sh("slurmctld && slurmd -N localhost");
        let start = Instant::now();
        loop {
            let out = Command::new("sinfo")
                .args(["-h", "-o", "%t"])
                .output()
                .unwrap();
            if stdout(&out).contains("idle") {
                return Slurm;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "slurm never became idle"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        let _ = Command::new("scontrol")
            .arg("shutdown")
            .stderr(Stdio::null())
            .status();
        for pid in [
            "/var/spool/slurmd/slurmd.pid",
            "/var/spool/slurmctld/slurmctld.pid",
        ] {
            if let Ok(pid) = std::fs::read_to_string(pid) {
                let _ = Command::new("kill")
                    .arg(pid.trim())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

#[test]
fn a_slurm_array_shards_a_map_and_the_gather_runs_nothing() {
    if !is_root() {
        eprintln!("needs root to install and start Slurm; CI runs as root");
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
