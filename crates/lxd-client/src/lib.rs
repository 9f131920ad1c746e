//! The LXD client: typed async API over the daemon's unix socket.
//!
//! Three layers, as in kube-core/kube-client:
//! - [`types`], [`spec`] and [`request`]: serde types, typed specs, request builders and
//!   answer parsing (pure);
//! - [`transport`]: HTTP over `$LXD_DIR/unix.socket` (hyper + hyperlocal);
//! - [`client`]: [`LxdClient`], the typed API (instances, operations, exec, files,
//!   profiles, storage pools, networks, images, server settings) that waits on
//!   operations.
//!
//! [`poll`] is the one backoff every wait on an instance uses; [`calls`] reports every
//! request to the process's call observer.

pub mod calls;
pub mod client;
pub mod poll;
pub mod request;
pub mod spec;
pub mod transport;
pub mod types;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use client::LxdClient;
pub use request::{Bytes, FilePush};
pub use spec::{ExecOutput, ExecSpec, InstanceSpec};
pub use types::{
    ConfigMap, Image, ImageAlias, ImageSource, Instance, InstanceState, Network, Operation,
    Profile, StoragePool,
};

/// Where the snap's LXD keeps its socket.
pub const SNAP_LXD_DIR: &str = "/var/snap/lxd/common/lxd";
/// Where Debian's (and a source-built) LXD keeps its socket.
pub const DEBIAN_LXD_DIR: &str = "/var/lib/lxd";

/// Everything that can go wrong talking to LXD.
#[derive(Debug, thiserror::Error)]
pub enum LxdError {
    /// The object asked for does not exist (LXD answered 404); LXD's own message.
    #[error("LXD: {message}")]
    NotFound { message: String },
    /// LXD refused because another operation (the instance's creation, say) still runs
    /// on the object; LXD's own message. Worth trying again shortly.
    #[error("LXD: {message}")]
    Busy { message: String },
    /// LXD refused or failed the request; its own message and status code.
    #[error("LXD error {status}: {message}")]
    Api { status: u16, message: String },
    /// A background operation ended in failure or was cancelled; LXD's `err` text.
    #[error("LXD operation '{description}' {status}: {message}")]
    Operation {
        description: String,
        status: String,
        message: String,
    },
    /// No answer, or the operation did not finish, within the time allowed.
    #[error("timed out after {after:?}: {what}")]
    Timeout { what: String, after: Duration },
    /// The socket could not be reached or the connection broke.
    #[error("cannot talk to LXD at {}: {message}", socket.display())]
    Transport { socket: PathBuf, message: String },
    /// LXD answered something this client does not understand.
    #[error("unexpected answer from LXD: {0}")]
    Protocol(String),
}

impl LxdError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, LxdError::NotFound { .. })
    }
    pub fn is_busy(&self) -> bool {
        matches!(self, LxdError::Busy { .. })
    }
}

/// Why an instance is not ready yet: what [`LxdClient::wait_ready`] waits past, and the
/// last of them names its timeout.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("exec true exited {0}")]
    ExecFailed(i32),
    #[error("no IPv4 address on {0} yet")]
    NoAddress(String),
    #[error(transparent)]
    Lxd(#[from] LxdError),
}

/// The socket to use: `lxd_dir/unix.socket` when the caller has one (`LXD_DIR`, read at
/// its edge), else the snap's if it `exists`, else Debian's.
pub fn socket_for(lxd_dir: Option<PathBuf>, exists: impl Fn(&Path) -> bool) -> PathBuf {
    if let Some(dir) = lxd_dir.filter(|d| !d.as_os_str().is_empty()) {
        return dir.join("unix.socket");
    }
    let snap = Path::new(SNAP_LXD_DIR).join("unix.socket");
    if exists(&snap) {
        return snap;
    }
    Path::new(DEBIAN_LXD_DIR).join("unix.socket")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod host_config_tests;
