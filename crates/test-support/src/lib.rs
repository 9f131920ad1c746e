//! What tests, `make demo` and `make bench` share and the packed charm never holds: the
//! hook-tool stand-in (its own binary), the benchmarks' measurements of LXD and of the
//! policy service, and [`bins`], which builds and finds the workspace's other binaries.

pub mod bins;
pub mod lxd_bench;
pub mod policy_bench;
pub mod policy_bench_sim;
