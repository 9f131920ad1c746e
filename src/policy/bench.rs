//! Measures the service's own time to answer a check: the real HTTP server on loopback
//! with an in-memory GitHub, so the numbers exclude GitHub's latency (for BENCHMARKS.md).
