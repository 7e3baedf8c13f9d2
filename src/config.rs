//! From parsed arguments and the environment to checked settings.

use std::path::PathBuf;

use crate::cli::{CacheArgs, KeyArgs, StoreArgs};
use crate::key::KeyOptions;
use crate::run::Settings;
use crate::store::remote::Remote;
use crate::store::{Store, Trust};

/// The store directory: `--store`, `JL_STORE`, or the user cache dir.
pub fn store_path(args: &StoreArgs) -> Option<PathBuf> {
    args.store.clone().or_else(|| {
        directories::ProjectDirs::from("", "", "jl").map(|dirs| dirs.cache_dir().to_path_buf())
    })
}

/// The store to use; `None` only when no home directory can be found.
pub fn store(args: &StoreArgs) -> Option<Store> {
    store_path(args).map(Store::new)
}

/// The store, for management commands that cannot work without one. A
/// directory jl does not trust is refused: they read it or delete in it.
pub fn required_store(args: &StoreArgs) -> anyhow::Result<Store> {
    let store = store(args)
        .ok_or_else(|| anyhow::anyhow!("no store directory: set JL_STORE or pass --store DIR"))?;
    if let Trust::Foreign(why) = store.trust() {
        anyhow::bail!(
            "{} is not a store jl may use: {why}; jl leaves it alone",
            store.root().display()
        );
    }
    Ok(store)
}

/// The store `jl run` and `jl map` use: none (with one warning) when the
/// directory is not one jl trusts, so nothing is replayed from it; and
/// whether it exists yet.
fn trusted_store(args: &StoreArgs) -> (Option<Store>, bool) {
    let Some(store) = store(args) else {
        return (None, false);
    };
    match store.trust() {
        Trust::Foreign(why) => {
            crate::run::store_warning(format_args!(
                "store {} is not used: {why}",
                store.root().display()
            ));
            (None, false)
        }
        Trust::Ours => (Some(store), true),
        Trust::New => (Some(store), false),
    }
}

pub fn key_options(args: &KeyArgs) -> KeyOptions {
    KeyOptions {
        inputs: args.input.clone(),
        outputs: args.output.clone(),
        env: args.env.clone(),
        auto_inputs: !args.no_auto_inputs,
        salt: args.salt.clone(),
        cwd: if args.cwd {
            std::env::current_dir().ok()
        } else {
            None
        },
        ignore_args: args.ignore_arg.clone(),
        trace: args.trace,
        trace_outputs: args.trace_outputs.iter().map(|p| absolute(p)).collect(),
        trace_ignore: args.trace_ignore.iter().map(|p| absolute(p)).collect(),
    }
}

/// `path` as the kernel names it (symlinks resolved), as traced paths are;
/// lexically made absolute when it does not exist yet.
fn absolute(path: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        crate::trace::normalize(&std::path::absolute(path).unwrap_or_else(|_| path.into()))
    })
}

/// Set in the environment of a background refresh (`--stale`, `--warm`):
/// when the caller asked for it, in ms since the epoch.
pub const REFRESH_ENV: &str = "JL_REFRESH";

/// `JL_MAX_SIZE`, or the default bound; `None` (with a warning) when it is
/// not a size, and then the store is not bounded.
fn max_size() -> Option<u64> {
    match std::env::var("JL_MAX_SIZE") {
        Err(_) => Some(crate::store::gc::DEFAULT_MAX_SIZE),
        Ok(v) => match v.parse::<bytesize::ByteSize>() {
            Ok(size) => Some(size.as_u64()),
            Err(_) => {
                crate::error::warn(format_args!(
                    "JL_MAX_SIZE={v} is not a size (try 10GiB); the store is not bounded"
                ));
                None
            }
        },
    }
}

/// Everything `jl run` and every job of `jl map` need, checked: the store
/// (if trusted), the key options, the remote, the bound. `stale` is `jl
/// run --stale`.
pub fn settings(
    key: &KeyArgs,
    cache: &CacheArgs,
    use_store: bool,
    stale: Option<std::time::Duration>,
) -> Settings {
    let (store, exists) = if use_store {
        trusted_store(&key.store)
    } else {
        (None, false)
    };
    let store = store.map(|s| s.compressing(cache.compress));
    Settings {
        // A store that does not exist yet is made by the first commit, in
        // an empty directory: digests are not remembered on disk before.
        stat: store
            .as_ref()
            .filter(|_| exists)
            .map(Store::stat_cache)
            .unwrap_or_default(),
        refresh_asked_ms: std::env::var(REFRESH_ENV)
            .ok()
            .and_then(|ms| ms.parse().ok()),
        max_size: use_store.then(max_size).flatten(),
        store,
        key: key_options(key),
        ttl: cache.ttl,
        stale,
        cache_failures: cache.cache_failures,
        force: cache.force,
        verbose: cache.verbose,
        log: cache.log.clone(),
        remote: cache
            .remote
            .as_deref()
            .filter(|url| use_store && !url.is_empty())
            .and_then(|url| {
                let header = std::env::var("JL_REMOTE_HEADER").ok();
                let remote = Remote::new(
                    url,
                    header.as_deref(),
                    cache.remote_read_only,
                    cache.remote_timeout,
                    cache.ttl,
                );
                match remote {
                    Ok(remote) => Some(std::sync::Arc::new(remote)),
                    Err(e) => {
                        crate::error::warn(format_args!("{e}; not using the remote cache"));
                        None
                    }
                }
            }),
    }
}
