//! The LXD side of the fixtures: the test daemon, a bridge of the test's own and a
//! container from the runner image, each deleted on drop.

use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::time::Duration;

use super::{poll, retry, timed_cleanup, FixtureError};

/// The test LXD daemon started by scripts/testbed.sh.
#[derive(Clone)]
pub struct Lxd {
    pub dir: String,
    pub image: String,
}

impl Lxd {
    /// The daemon from `LXD_DIR` (default: the testbed's), with the runner image.
    pub fn from_env() -> Result<Self, FixtureError> {
        let dir = std::env::var("LXD_DIR").unwrap_or_else(|_| "/var/lib/ghr-testbed/lxd".into());
        let image = std::env::var("GHR_TEST_IMAGE").unwrap_or_else(|_| "ghr-runner".into());
        let lxd = Lxd { dir, image };
        lxd.lxc(&["query", "/1.0"])
            .map_err(|e| FixtureError::NoDaemon {
                dir: lxd.dir.clone(),
                source: Box::new(e),
            })?;
        lxd.lxc(&["query", &format!("/1.0/images/aliases/{}", lxd.image)])
            .map_err(|e| FixtureError::NoImage {
                image: lxd.image.clone(),
                source: Box::new(e),
            })?;
        Ok(lxd)
    }

    pub fn lxc(&self, args: &[&str]) -> Result<String, FixtureError> {
        let out = self.lxc_output(args)?;
        if !out.status.success() {
            return Err(FixtureError::Lxc {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn lxc_output(&self, args: &[&str]) -> Result<Output, FixtureError> {
        Command::new("lxc")
            .args(args)
            .env("LXD_DIR", &self.dir)
            .output()
            .map_err(FixtureError::io("lxc"))
    }
}

/// A managed LXD bridge of the test's own, so its table cannot disturb other tests'
/// instances on the shared bridge.
pub struct LxdNetwork {
    lxd: Lxd,
    pub name: String,
}

impl LxdNetwork {
    /// A NAT-less bridge with `host_cidr`; with `ipv6_cidr` also a ULA prefix, routing
    /// off so LXD leaves the host's IPv6 forwarding alone.
    pub fn create(
        lxd: &Lxd,
        name: &str,
        host_cidr: &str,
        ipv6_cidr: Option<&str>,
    ) -> Result<Self, FixtureError> {
        let v4 = format!("ipv4.address={host_cidr}");
        let v6 = format!("ipv6.address={}", ipv6_cidr.unwrap_or("none"));
        let mut args = vec!["network", "create", name, &v4, "ipv4.nat=false", &v6];
        if ipv6_cidr.is_some() {
            args.extend(["ipv6.nat=false", "ipv6.routing=false"]);
        }
        lxd.lxc(&args)?;
        Ok(LxdNetwork {
            lxd: lxd.clone(),
            name: name.to_string(),
        })
    }
}

impl Drop for LxdNetwork {
    fn drop(&mut self) {
        timed_cleanup(&format!("network {}", self.name), || {
            let deleted = retry(Duration::from_secs(60), || {
                self.lxd.lxc(&["network", "delete", &self.name])
            });
            match deleted {
                Ok(_) => {
                    // LXD keeps the dnsmasq log of a deleted network.
                    let log = format!("{}/logs/dnsmasq.{}.log", self.lxd.dir, self.name);
                    let _ = std::fs::remove_file(log);
                }
                Err(e) => eprintln!("cleanup: could not delete network {}: {e}", self.name),
            }
        });
    }
}

/// A container from the runner image with its `eth0` on the given network.
pub struct Container {
    lxd: Lxd,
    pub name: String,
}

impl Container {
    /// Creates and starts the container. The shared test daemon has been seen to fail
    /// a start after about a minute while other tests start and delete many instances;
    /// that is retried once (loudly) so it does not pass for a firewall failure.
    pub fn launch(lxd: &Lxd, name: &str, network: &str) -> Result<Self, FixtureError> {
        match Self::launch_once(lxd, name, network) {
            Ok(c) => Ok(c),
            Err(first) => {
                eprintln!("LXD could not start {name}, retrying once: {first}");
                Self::launch_once(lxd, name, network)
            }
        }
    }

    fn launch_once(lxd: &Lxd, name: &str, network: &str) -> Result<Self, FixtureError> {
        lxd.lxc(&["init", &lxd.image, name])?;
        // From here on the guard deletes the instance, also when starting it fails.
        let c = Container {
            lxd: lxd.clone(),
            name: name.to_string(),
        };
        let nic = format!("network={network}");
        lxd.lxc(&["config", "device", "override", name, "eth0", &nic])?;
        let start = std::time::Instant::now();
        lxd.lxc(&["start", name]).map_err(|e| FixtureError::Start {
            source: Box::new(e),
            elapsed: start.elapsed(),
        })?;
        Ok(c)
    }

    /// The IPv4 address DHCP gave `eth0`, once there is one.
    pub fn wait_ipv4(&self, timeout: Duration) -> Ipv4Addr {
        poll(timeout, "the container's DHCP address", || {
            self.eth0_address("inet")?.parse().ok()
        })
    }

    /// The global IPv6 address SLAAC gave `eth0`, once there is one.
    pub fn wait_ipv6(&self, timeout: Duration) -> std::net::Ipv6Addr {
        poll(timeout, "the container's SLAAC address", || {
            self.eth0_address("inet6")?.parse().ok()
        })
    }

    fn eth0_address(&self, family: &str) -> Option<String> {
        let path = format!("/1.0/instances/{}/state", self.name);
        let state: serde_json::Value =
            serde_json::from_str(&self.lxd.lxc(&["query", &path]).ok()?).ok()?;
        state["network"]["eth0"]["addresses"]
            .as_array()?
            .iter()
            .find(|a| a["family"] == family && a["scope"] == "global")
            .and_then(|a| Some(a["address"].as_str()?.to_string()))
    }

    pub fn exec(&self, argv: &[&str]) -> Output {
        let mut args = vec!["exec", &self.name, "--"];
        args.extend_from_slice(argv);
        self.lxd.lxc_output(&args).expect("lxc exec")
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        timed_cleanup(&format!("container {}", self.name), || {
            // The shared daemon has been seen to stall for minutes and then refuse the
            // delete while a stop is still pending: keep trying for a while.
            let deleted = retry(Duration::from_secs(300), || {
                self.lxd.lxc(&["delete", "--force", &self.name])
            });
            if let Err(e) = deleted {
                eprintln!("cleanup: could not delete container {}: {e}", self.name);
            }
        });
    }
}
