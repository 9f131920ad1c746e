//! GitHub REST client for runner registrations, in three layers: serde [`models`], a
//! [`transport`] (auth, timeouts, proxy, retries, rate limits) and the [`client`] facade.
//! The client acts with a fixed token or as a GitHub App installation ([`app_auth`]):
//! `credential` mints and renews installation tokens, `token_cache` shares them
//! between the clients and processes of one unit.
//! [`repos`] adds the repository reads of the policy checks ([`repo_models`]).
//! [`scaleset`] is the runner scale-set API (the Actions service): admin connection,
//! scale sets, JIT runners, message sessions and their long-polled queue.
//! The [`retry`] decisions are pure and take an injected clock. [`calls`] reports every
//! request and GitHub's rate limit to the process's call observer.

pub mod app_auth;
pub mod calls;
pub mod client;
mod credential;
pub mod error;
pub mod models;
pub mod repo_models;
pub mod repos;
pub mod retry;
pub mod scaleset;
pub mod secret;
mod token_cache;
pub mod transport;

#[cfg(test)]
mod test_server;

pub use app_auth::{AppKey, Credential};
pub use client::GithubClient;
pub use error::GithubError;
pub use ghr_types::Secret;
pub use models::{
    DeleteOutcome, JitConfig, JitRequest, Label, RateLimit, RegistrationToken, Runner,
    RunnerDownload, RunnerGroup, RunnerId, RunnerName, RunnerStatus,
};
pub use retry::{Clock, RetryPolicy, SystemClock};
pub use scaleset::{
    is_unsupported, ActionsService, JobEvent, Message, ScaleSet, ScaleSetJit, ScaleSetSpec,
    ServiceRunner, Session, Statistics,
};
pub use transport::ClientOptions;
