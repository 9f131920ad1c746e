//! The manager's process: a socket only root reaches (hooks' requests), a worker that
//! does one piece of work at a time in the order asked, its own reconcile every
//! `reconcile-interval` minutes since the last one, and a clean end on SIGTERM.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::exporter;
use super::listener::Ending;
use super::observatory::Observatory;
use super::protocol::{read_line, write_line, Request};
use super::worker::{work, Work};
use crate::charm::deps::{HttpGithub, Knobs};
use crate::charm::Deps;
use ghr_metrics::ManagerMetrics;

/// Runs the manager of `unit` until SIGTERM or SIGINT.
pub fn run(unit: &str) -> ExitCode {
    let knobs = Knobs::from_env();
    let github = HttpGithub {
        request_timeout: knobs.github_timeout,
    };
    let deps = Deps::on_this_host(&knobs, &github, unit);
    let site = match deps.site() {
        Ok(site) => site.clone(),
        Err(e) => {
            log::error!("the unit has no place on this machine: {e}");
            return ExitCode::FAILURE;
        }
    };
    let socket = deps.paths.manager_socket(site.slot);
    let listener = match bind(&socket) {
        Ok(listener) => listener,
        Err(e) => {
            log::error!("cannot listen on {}: {e}", socket.display());
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = mpsc::channel();
    // Where the worker puts what ends its listener, for the signal thread.
    let ending: Arc<Mutex<Option<Ending>>> = Arc::default();
    if let Err(e) = spawn_signal_thread(tx.clone(), ending.clone()) {
        log::error!("cannot watch for SIGTERM: {e}");
        return ExitCode::FAILURE;
    }
    let observatory = observe(&deps, &knobs, site.metrics_port(), unit);
    let accepting = tx.clone();
    std::thread::spawn(move || accept(listener, accepting));
    log::info!("runner manager of {unit} listening on {}", socket.display());
    work(&deps, rx, tx, &ending, observatory);
    let _ = std::fs::remove_file(&socket);
    log::info!("runner manager of {unit} stopped");
    ExitCode::SUCCESS
}

/// The metrics every GitHub and LXD call reports to, served on the unit's endpoint,
/// and what the worker and the listener tell them.
fn observe(deps: &Deps, knobs: &Knobs, port: u16, unit: &str) -> Arc<Observatory> {
    let metrics = Arc::new(ManagerMetrics::new());
    ghr_types::telemetry::install(Box::new(metrics.clone()));
    // The unit's address, from its systemd unit (hooks write it there).
    let unit_address = std::env::var("GITHUB_RUNNER_METRICS_ADDRESS")
        .ok()
        .and_then(|a| a.trim().parse().ok());
    let port = knobs.metrics_port.unwrap_or(port);
    exporter::start(
        metrics.clone(),
        &exporter::addresses(unit_address, port),
        &deps.paths.metrics_endpoint_record(),
    );
    Arc::new(Observatory::new(metrics, deps.paths.events_log(), unit))
}

/// SIGTERM or SIGINT stops the listener and closes its scale-set session at once (the
/// worker may be in the middle of a reconcile longer than systemd waits), then ends
/// the worker. Handled (not blocked), so the programs the manager runs start with the
/// default signal mask.
fn spawn_signal_thread(
    tx: Sender<Work>,
    ending: Arc<Mutex<Option<Ending>>>,
) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut term, mut int) = runtime.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
        ))
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => log::info!("SIGTERM: stopping"),
                _ = int.recv() => log::info!("SIGINT: stopping"),
            }
        });
        // Stopped as well as closed: a listener that saw its session go would otherwise
        // open another while the worker finishes; nor does a new one start.
        super::worker::STOPPING.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(listener) = ending.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            listener.end();
        }
        let _ = tx.send(Work::Stop);
    });
    Ok(())
}

/// A fresh socket in a folder only root enters (a crash leaves the old file behind).
fn bind(socket: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = socket.parent() {
        fs_state::ensure_private_dir(dir).map_err(std::io::Error::other)?;
    }
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    UnixListener::bind(socket)
}

fn accept(listener: UnixListener, tx: Sender<Work>) {
    for stream in listener.incoming().flatten() {
        let tx = tx.clone();
        std::thread::spawn(move || answer(stream, tx));
    }
}

/// One connection: one request, its reply once the worker has done it.
fn answer(mut stream: UnixStream, tx: Sender<Work>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request: Request = match read_line(&mut stream) {
        Ok(request) => request,
        Err(e) => {
            log::warn!("a request that is not one: {e}");
            return;
        }
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    if tx.send(Work::Ask(request, reply_tx)).is_err() {
        return;
    }
    if let Ok(reply) = reply_rx.recv() {
        if let Err(e) = write_line(&mut stream, &reply) {
            log::warn!("the asker left before the answer: {e}");
        }
    }
}
