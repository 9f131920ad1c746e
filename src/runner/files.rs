//! What goes into a runner instance: the files the charm pushes (as one archive) and the
//! command that unpacks and starts them, rendered by pure functions from templates/.

use crate::config::GithubPath;
use crate::host::runner_env::RenderError;
use crate::host::runner_env::RunnerEnv;
use crate::runner::RunnerName;
use ghr_types::shell::quote;
use ghr_types::template;
use reconcile::ports::Credential;
use reconcile::ports::{PortError, PortResult};

pub const RUNNER_USER: &str = "ubuntu";
pub const RUNNER_UID: u32 = 1000;
pub const RUNNER_HOME: &str = "/home/ubuntu";
pub const RUNNER_DIR: &str = "/home/ubuntu/actions-runner";
pub const START_SCRIPT: &str = "/opt/github-runner/start.sh";
pub const PRE_JOB_SCRIPT: &str = "/opt/github-runner/pre-job.sh";
/// The runner application tarball inside the instance, unpacked into [`RUNNER_DIR`].
pub const APP_TARBALL: &str = "/home/ubuntu/actions-runner.tar.gz";
pub const DOCKER_CLIENT_CONFIG: &str = "/home/ubuntu/.docker/config.json";
/// Directories the pushed files go into (LXD's file API does not make parents), parents
/// first, with their owner.
pub const DIRECTORIES: &[OwnedDir] = &[
    (RUNNER_DIR, RUNNER_UID),
    ("/opt/github-runner", 0),
    ("/etc/docker", 0),
    ("/home/ubuntu/.docker", RUNNER_UID),
];

const START_TEMPLATE: &str = include_str!("../../templates/start.sh");

/// A file to write into the instance.
#[derive(Clone, PartialEq, Eq)]
pub struct InstanceFile {
    pub path: String,
    pub content: Vec<u8>,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl std::fmt::Debug for InstanceFile {
    // Contents may be credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "InstanceFile({}, {} bytes, {:o})",
            self.path,
            self.content.len(),
            self.mode
        )
    }
}

/// Everything the start script needs to know that is not secret.
#[derive(Clone, Debug)]
pub struct StartParams<'a> {
    pub github_web_url: &'a str,
    pub path: &'a GithubPath,
    pub name: &'a RunnerName,
    pub labels: &'a [String],
}

pub fn render_start_script(p: &StartParams) -> String {
    let url = format!("{}/{}", p.github_web_url.trim_end_matches('/'), p.path);
    let group = match p.path {
        GithubPath::Org { group, .. } => format!("--runnergroup {}", quote(group)),
        GithubPath::Repo { .. } => String::new(),
    };
    template::fill(
        START_TEMPLATE,
        &[
            ("RUNNER_DIR", &quote(RUNNER_DIR)),
            ("RUNNER_USER", RUNNER_USER),
            ("GITHUB_URL", &quote(&url)),
            ("RUNNER_NAME", &quote(p.name.as_str())),
            ("LABELS", &quote(&p.labels.join(","))),
            ("GROUP_ARG", &group),
            ("APP_TARBALL", &quote(APP_TARBALL)),
        ],
    )
}

/// The credential file the start script consumes (and deletes): readable by the runner
/// user only.
pub fn credential_file(credential: &Credential) -> InstanceFile {
    let (name, content) = match credential {
        Credential::Jit { encoded, .. } => (".jitconfig", encoded),
        Credential::RegistrationToken(token) => (".registration-token", token),
    };
    InstanceFile {
        path: format!("{RUNNER_DIR}/{name}"),
        content: content.expose().as_bytes().to_vec(),
        uid: RUNNER_UID,
        gid: RUNNER_UID,
        mode: 0o600,
    }
}

/// The labels a runner registers with: the application name, the image, then the
/// operator's extra labels, without duplicates.
pub fn runner_labels(app: &str, image: &str, extra: &[String]) -> Vec<String> {
    let mut labels: Vec<String> = Vec::new();
    for l in [app.to_string(), image.to_string()]
        .into_iter()
        .chain(extra.iter().cloned())
    {
        if !l.is_empty() && !labels.contains(&l) {
            labels.push(l);
        }
    }
    labels
}

fn file(path: &str, content: String, uid: u32, mode: u32) -> InstanceFile {
    InstanceFile {
        path: path.to_string(),
        content: content.into_bytes(),
        uid,
        gid: uid,
        mode,
    }
}

/// The runner's environment as files: its `.env`, `/etc/environment`, and Docker's
/// daemon and client configuration (proxies, Docker Hub mirror).
pub fn env_files(env: &RunnerEnv) -> Result<Vec<InstanceFile>, RenderError> {
    Ok(vec![
        file(
            &format!("{RUNNER_DIR}/.env"),
            env.render_dot_env()?,
            RUNNER_UID,
            0o644,
        ),
        file("/etc/environment", env.render_etc_environment()?, 0, 0o644),
        file(
            "/etc/docker/daemon.json",
            env.render_docker_daemon_json(),
            0,
            0o644,
        ),
        file(
            DOCKER_CLIENT_CONFIG,
            env.render_docker_client_config(),
            RUNNER_UID,
            0o644,
        ),
    ])
}

/// The pre-job script holds a one-time token: the runner user's alone.
pub fn pre_job_file(script: String) -> InstanceFile {
    file(PRE_JOB_SCRIPT, script, RUNNER_UID, 0o700)
}

/// Where the archive of a runner's files waits inside the instance: root's home exists
/// in every image, is never cleaned at boot, and the runner user cannot read it.
pub const FILES_ARCHIVE: &str = "/root/.github-runner-files.tar";

/// A directory to make in an instance, and its owner's uid.
pub type OwnedDir = (&'static str, u32);

/// A fixed modification time: the same files always make the same archive.
const ARCHIVE_MTIME: u64 = 1_700_000_000;

/// The runner's directories (with their owners) and files, as one tar archive (ustar
/// headers, numeric owners; paths relative to `/`, as tar unpacks them with `-C /`).
pub fn files_archive(dirs: &[OwnedDir], files: &[InstanceFile]) -> PortResult<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |kind, path: &str, mode, (uid, gid): (u32, u32), content: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(uid.into());
        header.set_gid(gid.into());
        header.set_size(content.len() as u64);
        header.set_mtime(ARCHIVE_MTIME);
        tar.append_data(&mut header, path.trim_start_matches('/'), content)
    };
    for &(path, uid) in dirs {
        let path = format!("{}/", path.trim_end_matches('/'));
        add(tar::EntryType::Directory, &path, 0o755, (uid, uid), &[])
            .map_err(|e| PortError::transient_from(e).context(format!("archiving {path}")))?;
    }
    for f in files {
        add(
            tar::EntryType::Regular,
            &f.path,
            f.mode,
            (f.uid, f.gid),
            &f.content,
        )
        .map_err(|e| PortError::transient_from(e).context(format!("archiving {}", f.path)))?;
    }
    tar.into_inner().map_err(PortError::transient_from)
}

/// Unpacks the archive (directories the image already has keep their owner and mode),
/// then hands the units to systemd. Exec works before systemd has finished booting, so
/// the start waits for systemd's socket, checked by a shell builtin: a `systemctl`
/// retried every 50 ms in each of 8 booting instances kept a whole CPU busy (measured).
pub fn start_command(units: &str) -> String {
    let archive = quote(FILES_ARCHIVE);
    format!(
        "tar --numeric-owner --same-owner --same-permissions --no-overwrite-dir \
             -xf {archive} -C / && rm -f {archive} || exit 1; \
         for _ in $(seq 600); do \
             [ -S {SYSTEMD_SOCKET} ] && systemctl start --no-block {units} 2>/dev/null && exit 0; \
             sleep 0.05; \
         done; echo 'systemd did not take the runner units within 30s' >&2; exit 1"
    )
}

/// systemd's own socket, which `systemctl` run as root talks to.
const SYSTEMD_SOCKET: &str = "/run/systemd/private";

#[cfg(test)]
mod tests {
    use super::*;
    use ghr_types::Secret;

    #[test]
    fn start_script_for_an_org_runner() {
        let path = GithubPath::Org {
            org: "acme".into(),
            group: "big ones".into(),
        };
        let name = RunnerName("app-0-0000abcd".into());
        let labels = vec!["app".to_string(), "jammy".to_string()];
        let s = render_start_script(&StartParams {
            github_web_url: "https://github.com/",
            path: &path,
            name: &name,
            labels: &labels,
        });
        assert!(s.contains("runner_dir='/home/ubuntu/actions-runner'"));
        assert!(s.contains("--url 'https://github.com/acme'"));
        assert!(s.contains("--name 'app-0-0000abcd' --labels 'app,jammy' --runnergroup 'big ones'"));
    }

    #[test]
    fn repo_runners_have_no_group_and_quotes_are_safe() {
        let path = GithubPath::Repo {
            owner: "o".into(),
            repo: "r".into(),
        };
        let name = RunnerName("n".into());
        let labels = vec!["it's".to_string()];
        let s = render_start_script(&StartParams {
            github_web_url: "http://10.0.0.1:8080",
            path: &path,
            name: &name,
            labels: &labels,
        });
        assert!(s.contains("--url 'http://10.0.0.1:8080/o/r'"));
        assert!(s.contains(r"--labels 'it'\''s' "));
        assert!(!s.contains("--runnergroup"));
    }

    #[test]
    fn credentials_are_private_to_the_runner_user() {
        let f = credential_file(&Credential::Jit {
            id: 3,
            encoded: Secret::new("c2VjcmV0"),
        });
        assert_eq!(
            (f.path.as_str(), f.mode, f.uid),
            ("/home/ubuntu/actions-runner/.jitconfig", 0o600, 1000)
        );
        assert!(!format!("{f:?}").contains("c2VjcmV0"));
        let t = credential_file(&Credential::RegistrationToken(Secret::new("tok")));
        assert!(t.path.ends_with(".registration-token"));
    }

    #[test]
    fn labels_are_deduplicated_in_order() {
        assert_eq!(
            runner_labels("app", "jammy", &["gpu".into(), "app".into()]),
            ["app", "jammy", "gpu"]
        );
    }

    #[test]
    fn the_start_command_unpacks_then_starts_the_units() {
        let command = start_command("a.service b.service");
        let unpack = command
            .find("-xf '/root/.github-runner-files.tar' -C /")
            .unwrap();
        let remove = command
            .find("rm -f '/root/.github-runner-files.tar'")
            .unwrap();
        let start = command
            .find("systemctl start --no-block a.service b.service")
            .unwrap();
        assert!(unpack < remove && remove < start, "{command}");
        // A directory the image has keeps its owner and mode.
        assert!(command.contains("--no-overwrite-dir"));
    }

    #[test]
    fn long_paths_survive_the_archive() {
        let path = format!("/opt/{}/file", "d".repeat(120));
        let file = InstanceFile {
            path: path.clone(),
            content: b"x".to_vec(),
            uid: 0,
            gid: 0,
            mode: 0o644,
        };
        let tar = files_archive(&[], &[file]).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some(&path[1..]));
    }

    #[test]
    fn the_archive_holds_directories_then_files_with_their_owners() {
        let secret = InstanceFile {
            path: "/home/ubuntu/actions-runner/.jitconfig".into(),
            content: b"cred".to_vec(),
            uid: 1000,
            gid: 1000,
            mode: 0o600,
        };
        let tar = files_archive(
            &[("/home/ubuntu/actions-runner", 1000), ("/opt/x", 0)],
            &[secret],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("files.tar");
        std::fs::write(&path, tar).unwrap();
        let out = std::process::Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&path)
            .output()
            .unwrap();
        let listing = String::from_utf8(out.stdout).unwrap();
        let rows: Vec<(&str, &str, &str)> = listing
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0], f[1], f[5])
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("drwxr-xr-x", "1000/1000", "home/ubuntu/actions-runner/"),
                ("drwxr-xr-x", "0/0", "opt/x/"),
                (
                    "-rw-------",
                    "1000/1000",
                    "home/ubuntu/actions-runner/.jitconfig"
                ),
            ]
        );
    }
}
