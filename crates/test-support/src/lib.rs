//! What tests, `make demo` and `make bench` share and the packed charm never holds: the
//! benchmarks' measurements of LXD and of the policy service, and [`bins`], which builds
//! and finds the workspace's binaries (the hook-tool stand-in is its own crate,
//! crates/hook-standin); [`exposition`] reads what a metrics endpoint serves.

pub mod app_key;
pub mod bins;
pub mod exposition;
pub mod lxd_bench;
pub mod policy_bench;
pub mod policy_bench_sim;
