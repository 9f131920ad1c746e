//! Watching a unit's pool while jobs run: samples of its LXD instances and of its
//! runners' state on the simulator, the runner-seconds they add up to, the jobs'
//! queued-to-started times from the simulator's timestamps, and the LXD writes made
//! while something runs. Shared by the on-demand benchmarks and `make demo`.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::firewall_support::{poll, Lxd};
use crate::lab::Sim;

/// One look at the pool.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    /// Instances of the unit in LXD, in any state: a stopped one still holds its
    /// RAM-backed disk until LXD deletes it.
    pub instances: usize,
    /// Those not stopped or stopping: the runners the maximum bounds.
    pub live: usize,
    /// Runners of the unit running a job (the simulator's `busy`).
    pub busy: usize,
    /// Runners of the unit online and waiting for a job.
    pub waiting: usize,
}

/// Samples the pool of the unit whose instances and runners start with `prefix`.
pub fn sample(lxd: &Lxd, sim: &Sim, prefix: &str) -> Sample {
    // `recursion=1` without the instances' state: far quicker than `lxc list`.
    let out = lxd.lxc(&["query", "/1.0/instances?recursion=1"]).unwrap();
    let list: Value = serde_json::from_str(&out).unwrap();
    let mine: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"].as_str().unwrap_or("").starts_with(prefix))
        .collect();
    let live = mine
        .iter()
        .filter(|i| !matches!(i["status"].as_str(), Some("Stopped" | "Stopping")))
        .count();
    let runners = sim.runners(prefix);
    let busy = runners.iter().filter(|r| r["busy"] == true).count();
    let waiting = runners
        .iter()
        .filter(|r| r["online"] == true && r["busy"] == false)
        .count();
    Sample {
        at: Instant::now(),
        instances: mine.len(),
        live,
        busy,
        waiting,
    }
}

/// What a run of samples adds up to, each sample's counts held until the next one.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub window: Duration,
    pub samples: usize,
    /// Instance-seconds: every instance of the unit, whatever it is doing.
    pub total: f64,
    /// Runner-seconds spent running a job.
    pub busy: f64,
    /// Of the idle ones, seconds online waiting for a job (the rest is booting,
    /// registering or powering off).
    pub waiting: f64,
    /// Instance-seconds stopped or stopping: a runner done with its job, not yet deleted.
    pub stopped: f64,
    /// The most live runners seen at once.
    pub peak: usize,
}

impl Usage {
    /// Instance-seconds not spent running a job.
    pub fn idle(&self) -> f64 {
        (self.total - self.busy).max(0.0)
    }

    /// Idle instance-seconds neither waiting online nor stopped: booting, registering.
    pub fn booting(&self) -> f64 {
        (self.idle() - self.waiting - self.stopped).max(0.0)
    }
}

pub fn usage(samples: &[Sample]) -> Usage {
    let mut u = Usage {
        samples: samples.len(),
        peak: samples.iter().map(|s| s.live).max().unwrap_or(0),
        ..Usage::default()
    };
    for pair in samples.windows(2) {
        let dt = pair[1].at.duration_since(pair[0].at).as_secs_f64();
        u.total += pair[0].instances as f64 * dt;
        // A runner can report busy a moment before or after LXD lists its instance.
        u.busy += pair[0].busy.min(pair[0].instances) as f64 * dt;
        u.waiting += pair[0].waiting.min(pair[0].instances) as f64 * dt;
        u.stopped += (pair[0].instances - pair[0].live) as f64 * dt;
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        u.window = last.at.duration_since(first.at);
    }
    u
}

/// Samples the pool from now until `jobs` are all completed and the pool is back at
/// rest: `rest` instances, all of them online and idle. `tick` runs before each sample
/// (e.g. what a static pool's timer does). Every sample, the first taken at once.
pub fn watch_burst(
    lxd: &Lxd,
    sim: &Sim,
    prefix: &str,
    jobs: &[u64],
    rest: usize,
    mut tick: impl FnMut(),
) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(1200);
    let mut samples = vec![sample(lxd, sim, prefix)];
    loop {
        tick();
        std::thread::sleep(Duration::from_millis(200));
        let s = sample(lxd, sim, prefix);
        samples.push(s);
        let at_rest = s.instances == rest && s.waiting == rest && s.busy == 0;
        if at_rest && jobs.iter().all(|id| sim.job(*id)["state"] == "completed") {
            return samples;
        }
        assert!(
            Instant::now() < deadline,
            "the burst did not end within 1200 s: {s:?}, jobs {:?}",
            jobs.iter().map(|id| sim.job(*id)).collect::<Vec<_>>()
        );
    }
}

/// Seconds from the job's `from` timestamp to its `to` one (RFC 3339, the simulator's).
pub fn between(job: &Value, from: &str, to: &str) -> f64 {
    let at = |key: &str| {
        let text = job[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key}: {job}"));
        chrono::DateTime::parse_from_rfc3339(text).unwrap()
    };
    (at(to) - at(from)).num_microseconds().unwrap() as f64 / 1e6
}

/// The nearest-rank percentile `p` (0-100) of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
}

/// LXD API requests other than GET made while `act` runs (see [`lxd_requests`]).
pub fn lxd_writes(lxd: &Lxd, act: &dyn Fn()) -> usize {
    lxd_requests(lxd, act)
        .iter()
        .filter(|l| !l.contains("method=GET"))
        .count()
}

/// The LXD API requests made while `act` runs, as the daemon's own debug log (through
/// `lxc monitor`) shows them, one line each, between two marker requests. The markers
/// are sent with curl: `lxc query` would first ask `GET /1.0` of its own, which would
/// land inside the window.
pub fn lxd_requests(lxd: &Lxd, act: &dyn Fn()) -> Vec<String> {
    let log = tempfile::NamedTempFile::new().unwrap();
    // Ended by PID when dropped, also when `act` panics.
    let _monitor = crate::lab::Process(
        std::process::Command::new("lxc")
            .args(["monitor", "--type=logging", "--loglevel=debug", "--pretty"])
            .env("LXD_DIR", &lxd.dir)
            .stdout(log.reopen().unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let socket = format!("{}/unix.socket", lxd.dir);
    let seen = |tag: &str| {
        std::fs::read_to_string(log.path())
            .is_ok_and(|t| t.contains(&format!("bench-marker={tag}")))
    };
    let mark = |tag: &str| {
        poll(Duration::from_secs(10), "lxc monitor", || {
            let url = format!("http://lxd/1.0?bench-marker={tag}");
            let sent = std::process::Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "--unix-socket", &socket, &url])
                .status()
                .unwrap();
            assert!(sent.success(), "curl to {socket}");
            seen(tag).then_some(())
        })
    };
    mark("start");
    act();
    mark("end");
    let text = std::fs::read_to_string(log.path()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.contains("bench-marker=start"))
        .unwrap();
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.contains("bench-marker=end"))
            .unwrap();
    lines[start + 1..end]
        .iter()
        .filter(|l| l.contains("Handling API request"))
        .map(|l| l.to_string())
        .collect()
}
