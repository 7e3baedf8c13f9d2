//! jl's integration tests: the real binary, real commands, a temp store each.

mod util;

mod map;
mod run;
