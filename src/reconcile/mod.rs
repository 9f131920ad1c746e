//! The reconcile engine: observe (own instances, own registrations) -> plan (pure) ->
//! execute with bounded parallelism, returning a report.

pub mod plan;
