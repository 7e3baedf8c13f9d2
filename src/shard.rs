//! Which slice of a map this process takes: `--shard I/N`, or `--shard auto`
//! from the job-array variables of a cluster scheduler.
//!
//! Shards split items by position (item k goes to shard k mod N), so N
//! array tasks over the same list, sharing a store or a remote cache, do
//! every item once; a plain `jl map` over the list afterwards gathers them
//! all as hits, in order.

/// `(index, count)` with `index < count`.
pub type Shard = (u64, u64);

/// Parses `--shard`: `I/N`, or `auto` (read from the environment).
pub fn parse(text: &str) -> Result<Shard, String> {
    if text == "auto" {
        return from_env(|name| std::env::var(name).ok());
    }
    let parsed = text
        .split_once('/')
        .and_then(|(i, n)| Some((i.parse::<u64>().ok()?, n.parse::<u64>().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => Err(format!(
            "--shard {text}: expected I/N with 0 <= I < N (e.g. --shard 0/4), or auto"
        )),
    }
}

/// The variables `--shard auto` looks for, in this order.
const INDEX_VARS: &str = "SLURM_ARRAY_TASK_ID, SGE_TASK_ID, LSB_JOBINDEX, PBS_ARRAY_INDEX, \
     PBS_ARRAYID, JOB_COMPLETION_INDEX, HQ_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX";

/// The shard of this array task. Slurm and SGE say both the index and the
/// range; LSF says the end and step of an array starting at 1. The others
/// give only a 0-based index, and `JL_SHARD_COUNT` says how many tasks
/// there are.
fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
    let num = |name: &str| -> Result<Option<u64>, String> {
        match get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("--shard auto: {name}={v} is not a number")),
        }
    };
    let need = |name: &str| -> Result<u64, String> {
        num(name)?.ok_or_else(|| format!("--shard auto: {name} is not set"))
    };
    let shard = if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        (
            id.saturating_sub(min) / step,
            need("SLURM_ARRAY_TASK_COUNT")?,
        )
    } else if let Some(id) = get("SGE_TASK_ID").filter(|v| v != "undefined") {
        let id: u64 = id
            .parse()
            .map_err(|_| format!("--shard auto: SGE_TASK_ID={id} is not a number"))?;
        let first = need("SGE_TASK_FIRST")?;
        let step = num("SGE_TASK_STEPSIZE")?.unwrap_or(1).max(1);
        let last = need("SGE_TASK_LAST")?;
        (
            (id - first.min(id)) / step,
            (last.saturating_sub(first)) / step + 1,
        )
    } else if let Some(id) = num("LSB_JOBINDEX")?.filter(|id| *id > 0) {
        let step = num("LSB_JOBINDEX_STEP")?.unwrap_or(1).max(1);
        let end = need("LSB_JOBINDEX_END")?;
        ((id - 1) / step, (end.saturating_sub(1)) / step + 1)
    } else {
        let found = [
            "PBS_ARRAY_INDEX",
            "PBS_ARRAYID",
            "JOB_COMPLETION_INDEX",
            "HQ_TASK_ID",
            "AWS_BATCH_JOB_ARRAY_INDEX",
        ]
        .into_iter()
        .find_map(|name| num(name).transpose().map(|id| id.map(|id| (name, id))))
        .transpose()?;
        let Some((name, id)) = found else {
            return Err(format!(
                "--shard auto: no job-array index in the environment (looked for {INDEX_VARS}); \
                 use --shard I/N outside a job array"
            ));
        };
        let count = num("JL_SHARD_COUNT")?.ok_or_else(|| {
            format!("--shard auto: {name} gives the index but not the count; set JL_SHARD_COUNT")
        })?;
        (id, count)
    };
    match shard {
        (i, n) if n > 0 && i < n => Ok((i, n)),
        (i, n) => Err(format!("--shard auto: task {i} of {n} is not a shard")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Shard, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn schedulers_name_the_shard() {
        assert_eq!(parse("1/4"), Ok((1, 4)));
        assert!(parse("4/4").is_err());
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ];
        assert_eq!(
            with(&[
                slurm[0],
                slurm[1],
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_STEP", "2")
            ]),
            Ok((2, 4))
        );
        assert_eq!(with(&[("SLURM_ARRAY_TASK_ID", "0"), slurm[1]]), Ok((0, 4)));
        let sge = [
            ("SGE_TASK_ID", "3"),
            ("SGE_TASK_FIRST", "1"),
            ("SGE_TASK_LAST", "8"),
        ];
        assert_eq!(with(&sge), Ok((2, 8)));
        assert_eq!(
            with(&[("LSB_JOBINDEX", "4"), ("LSB_JOBINDEX_END", "10")]),
            Ok((3, 10))
        );
        assert_eq!(
            with(&[("JOB_COMPLETION_INDEX", "2"), ("JL_SHARD_COUNT", "3")]),
            Ok((2, 3))
        );
        assert!(
            with(&[("AWS_BATCH_JOB_ARRAY_INDEX", "2")])
                .unwrap_err()
                .contains("JL_SHARD_COUNT")
        );
        assert!(with(&[]).unwrap_err().contains("no job-array index"));
        assert!(with(&[("SLURM_ARRAY_TASK_ID", "9"), slurm[1]]).is_err());
    }
}
