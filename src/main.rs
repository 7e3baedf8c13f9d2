//! jl: transparent disk caching and easy parallel runs for shell commands.

mod cli;
mod config;
mod deps;
mod digest;
mod error;
mod exec;
mod front;
mod generate;
mod joblog;
mod key;
mod outputs;
mod progress;
mod rawpath;
mod run;
mod shard;
mod stdin;
mod store;
mod template;
mod tokens;
mod trace;
mod tree;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// The version, with `git describe` when built from a checkout.
pub const VERSION: &str = env!("JL_VERSION");

/// What `jl` alone prints: enough to get going.
const SHORT_USAGE: &str = "\
Usage: jl run [OPTIONS] [--] CMD [ARGS]...   run CMD through the cache
       jl map [OPTIONS] [--] CMD [ARGS]...   run CMD over stdin's lines in parallel
       jl ls | show | stats | explain | gc | rm | clear | verify
Try 'jl --help', 'jl run --help' or 'man jl'.";

fn main() -> ExitCode {
    if std::env::args_os().len() == 1 {
        eprintln!("{SHORT_USAGE}");
        return ExitCode::from(error::USAGE as u8);
    }
    let parsed = match cli::run_args_alone() {
        Some(args) => Ok(Cli {
            command: Command::Run(args),
        }),
        None => Cli::try_parse(),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(cli::usage_error(e) as u8),
    };
    let code = match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                0
            } else {
                eprintln!("jl: error: {err:#}");
                error::code_of_error(&err)
            }
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let traced = match &cli.command {
        Command::Run(args) => args.key.trace,
        Command::Map(args) => args.key.trace,
        Command::Explain(args) => args.key.trace,
        _ => false,
    };
    if let Some(why) = traced.then(trace::unavailable).flatten() {
        anyhow::bail!("{why}");
    }
    match cli.command {
        Command::Run(args) => {
            let settings = config::settings(&args.key, &args.cache, true, args.stale);
            Ok(front::run::main(args, settings))
        }
        Command::Map(args) => front::map::main(args),
        Command::Ls(args) => front::manage::ls(args),
        Command::Show(args) => front::manage::show(args),
        Command::Stats(args) => front::manage::stats(args),
        Command::Explain(args) => front::explain::explain(args),
        Command::Gc(args) => front::manage::gc(args),
        Command::Rm(args) => front::manage::rm(args),
        Command::Clear(args) => front::manage::clear(args),
        Command::Verify(args) => front::manage::verify(args),
        Command::Report(args) => front::report::report(args),
        Command::Generate(args) => generate::main(args),
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
