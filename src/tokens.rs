//! Job tokens: how `jl map` shares parallelism with a GNU make jobserver.
//!
//! Under `make -jN`, jl is one of make's jobs and already holds one implicit
//! token. Each further job it runs at the same time takes a token from make's
//! jobserver and gives it back when the job ends, so `make -j8` bounds the
//! whole build, jl's jobs included. Without a jobserver only `-j` bounds.

use std::sync::Mutex;

/// Grants permission to run one job; dropping it gives the permission back.
pub enum Token<'a> {
    /// The token jl holds by being a make job; at most one job has it.
    Implicit(&'a Tokens),
    /// A token read from make's jobserver.
    Acquired(#[allow(dead_code)] jobserver::Acquired),
    /// No jobserver (or it failed): `-j` alone bounds parallelism.
    Free,
}

pub struct Tokens {
    client: Option<jobserver::Client>,
    implicit_taken: Mutex<bool>,
}

impl Tokens {
    /// Connects to make's jobserver when `MAKEFLAGS` names one that works.
    pub fn from_env() -> Tokens {
        // SAFETY: called once, before `jl map` opens any file, so the
        // descriptors named in MAKEFLAGS are make's, not ones we opened;
        // `check_pipe` makes sure they are pipes (or make's fifo).
        #[allow(unsafe_code)]
        let found = unsafe { jobserver::Client::from_env_ext(true) };
        let client = match found.client {
            Ok(client) => Some(client),
            Err(e) => {
                use jobserver::FromEnvErrorKind::{NoEnvVar, NoJobserver};
                if !matches!(e.kind(), NoEnvVar | NoJobserver) {
                    crate::error::warn(format_args!(
                        "make's jobserver is not usable ({e}); only -j bounds the jobs \
                         (prefix the recipe line with '+' so make passes its jobserver on)"
                    ));
                }
                None
            }
        };
        Tokens {
            client,
            implicit_taken: Mutex::new(false),
        }
    }

    /// Blocks until a job may start.
    pub fn acquire(&self) -> Token<'_> {
        let Some(client) = &self.client else {
            return Token::Free;
        };
        {
            let mut taken = self.implicit_taken.lock().expect("implicit token");
            if !*taken {
                *taken = true;
                return Token::Implicit(self);
            }
        }
        match client.acquire() {
            Ok(acquired) => Token::Acquired(acquired),
            Err(e) => {
                crate::error::warn(format_args!(
                    "make's jobserver failed ({e}); running anyway"
                ));
                Token::Free
            }
        }
    }
}

impl Drop for Token<'_> {
    fn drop(&mut self) {
        if let Token::Implicit(tokens) = self {
            *tokens.implicit_taken.lock().expect("implicit token") = false;
        }
    }
}
