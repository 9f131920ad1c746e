//! The charm's own files as Juju reads them: metadata/config/actions yaml agree with the
//! issue's spec and with the code (config defaults equal `RawConfig::default()`, every
//! action and hook has a handler), and `dispatch` and the hooks find the binary beside
//! them from any working directory. The packed `.charm` is checked in charm_package.rs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use github_runner::charm::{Action, Event};
use github_runner::config::RawConfig;

/// The hooks Juju before 2.8 runs directly (newer Juju runs `dispatch`).
const HOOKS: [&str; 7] = [
    "install",
    "start",
    "stop",
    "remove",
    "upgrade-charm",
    "config-changed",
    "update-status",
];

/// Option, type and default as issue 2 specifies them (defaults as YAML scalars), and
/// issue 17's GitHub App.
const OPTIONS: [(&str, &str, &str); 21] = [
    ("path", "string", "\"\""),
    ("group", "string", "default"),
    ("token", "string", "\"\""),
    ("github-app-id", "int", "0"),
    ("github-app-client-id", "string", "\"\""),
    ("github-app-installation-id", "int", "0"),
    ("github-app-private-key", "string", "\"\""),
    ("virtual-machines", "int", "1"),
    ("max-total-virtual-machines", "int", "0"),
    ("vm-cpu", "int", "2"),
    ("vm-memory", "string", "7GiB"),
    ("vm-disk", "string", "10GiB"),
    ("reconcile-interval", "int", "10"),
    ("denylist", "string", "\"\""),
    ("dockerhub-mirror", "string", "\"\""),
    ("experimental-use-aproxy", "boolean", "false"),
    ("test-mode", "string", "\"\""),
    ("labels", "string", "\"\""),
    ("github-url", "string", "https://github.com"),
    ("runner-instance-type", "string", "virtual-machine"),
    ("runner-image", "string", "\"\""),
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_file(name: &str) -> serde_yaml::Value {
    let text = fs::read_to_string(repo().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 == 0o111)
        .unwrap_or(false)
}

#[test]
fn config_yaml_declares_exactly_the_specified_options() {
    let config = yaml_file("config.yaml");
    let options = config["options"]
        .as_mapping()
        .expect("config.yaml: options mapping");
    let declared: Vec<&str> = options
        .keys()
        .map(|k| k.as_str().expect("option name"))
        .collect();
    let expected: Vec<&str> = OPTIONS.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(
        sorted(declared),
        sorted(expected),
        "config.yaml option names"
    );
    for (name, kind, default) in OPTIONS {
        let option = &config["options"][name];
        assert_eq!(option["type"].as_str(), Some(kind), "{name}: type");
        let want: serde_yaml::Value = serde_yaml::from_str(default).unwrap();
        assert_eq!(option["default"], want, "{name}: default");
        let about = option["description"].as_str().unwrap_or_default();
        assert!(!about.trim().is_empty(), "{name}: needs a description");
    }
}

/// What config.yaml tells the operator matches the code: the file it names for the
/// defaults exists, and an empty `runner-image` is the image server the code launches from.
#[test]
fn config_yaml_says_what_the_code_does() {
    let text = fs::read_to_string(repo().join("config.yaml")).unwrap();
    let named: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .filter(|w| w.starts_with("src/"))
        .map(|w| w.trim_end_matches([',', '.']))
        .collect();
    assert!(!named.is_empty(), "the header names the parsing code");
    for file in named {
        assert!(repo().join(file).is_file(), "config.yaml names {file}");
    }
    let about = yaml_file("config.yaml")["options"]["runner-image"]["description"]
        .as_str()
        .unwrap()
        .replace('\n', " ");
    let server = github_runner::runner::layout::UBUNTU_IMAGES;
    let host = server.split('/').nth(2).unwrap();
    assert!(about.contains(host), "runner-image: {about:?} vs {server}");
    assert!(about.contains(github_runner::runner::layout::UBUNTU_ALIAS));
}

#[test]
fn config_yaml_defaults_equal_raw_config_defaults() {
    // What config-get would answer on a fresh deployment, read through the real parser.
    let config = yaml_file("config.yaml");
    let mut defaults = serde_json::Map::new();
    for (name, option) in config["options"].as_mapping().unwrap() {
        let value = serde_json::to_value(&option["default"]).unwrap();
        defaults.insert(name.as_str().unwrap().to_string(), value);
    }
    let from_yaml: RawConfig =
        serde_json::from_value(defaults.into()).expect("defaults parse as RawConfig");
    assert_eq!(
        format!("{from_yaml:?}"),
        format!("{:?}", RawConfig::default())
    );
}

#[test]
fn actions_yaml_matches_the_handled_actions() {
    let actions = yaml_file("actions.yaml");
    let names: Vec<&str> = actions
        .as_mapping()
        .expect("actions mapping")
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    let expected = vec![
        "check-runners",
        "flush-runners",
        "reconcile-runners",
        "update-dependencies",
    ];
    assert_eq!(sorted(names.clone()), expected);
    for name in names {
        let event = Event::from_dispatch_path(&format!("actions/{name}"));
        assert!(
            !matches!(event, Event::Action(Action::Unknown(_))),
            "actions/{name} has no handler"
        );
        assert!(
            actions[name]["description"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty()),
            "{name}: description"
        );
    }
    let flush_busy = &actions["flush-runners"]["params"]["flush-busy"];
    assert_eq!(flush_busy["type"].as_str(), Some("boolean"));
    assert_eq!(flush_busy["default"].as_bool(), Some(true));
}

#[test]
fn metadata_names_the_charm() {
    let metadata = yaml_file("metadata.yaml");
    assert_eq!(metadata["name"].as_str(), Some("github-runner"));
    for field in ["summary", "description"] {
        assert!(
            metadata[field]
                .as_str()
                .is_some_and(|s| !s.trim().is_empty()),
            "metadata.yaml: {field}"
        );
    }
}

#[test]
fn every_hook_is_an_executable_script_for_a_known_event() {
    let mut found: Vec<String> = fs::read_dir(repo().join("hooks"))
        .expect("hooks/")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    found.sort();
    assert_eq!(found, sorted(HOOKS.to_vec()));
    for hook in HOOKS {
        let path = repo().join("hooks").join(hook);
        // Not a symlink: charmcraft's zip follows links, and a copy of dispatch under
        // hooks/ would look for the binary in hooks/.
        assert!(
            !fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink(),
            "hooks/{hook} is a symlink"
        );
        assert!(is_executable(&path), "hooks/{hook} is not executable");
        assert!(!matches!(
            Event::from_dispatch_path(&format!("hooks/{hook}")),
            Event::Unknown(_)
        ));
    }
    assert!(
        is_executable(&repo().join("dispatch")),
        "dispatch is not executable"
    );
}

/// A charm directory (with a space in its path, to catch quoting slips) holding the real
/// dispatch and hooks and a stand-in binary that records what it was started with.
struct FakeCharm {
    _root: tempfile::TempDir,
    dir: PathBuf,
    elsewhere: PathBuf,
    record: PathBuf,
}

impl FakeCharm {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("charm dir");
        fs::create_dir_all(dir.join("hooks")).unwrap();
        fs::copy(repo().join("dispatch"), dir.join("dispatch")).unwrap();
        for hook in HOOKS {
            fs::copy(
                repo().join("hooks").join(hook),
                dir.join("hooks").join(hook),
            )
            .unwrap();
        }
        let record = root.path().join("record");
        let stub = format!(
            "#!/bin/sh\nprintf '%s\\n%s\\n%s\\n' \"$0\" \"$JUJU_DISPATCH_PATH\" \"$#\" > '{}'\n",
            record.display()
        );
        fs::write(dir.join("github-runner"), stub).unwrap();
        fs::set_permissions(dir.join("github-runner"), fs::Permissions::from_mode(0o755)).unwrap();
        let elsewhere = root.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        FakeCharm {
            _root: root,
            dir,
            elsewhere,
            record,
        }
    }

    /// Run `program` from `cwd`; return (binary path, JUJU_DISPATCH_PATH, argument count).
    fn run(
        &self,
        program: &Path,
        cwd: &Path,
        dispatch_path: Option<&str>,
    ) -> (String, String, String) {
        let _ = fs::remove_file(&self.record);
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd).env_remove("JUJU_DISPATCH_PATH");
        if let Some(path) = dispatch_path {
            cmd.env("JUJU_DISPATCH_PATH", path);
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        assert!(status.success(), "{} exited {status}", program.display());
        let text = fs::read_to_string(&self.record).expect("the binary was not started");
        let mut lines = text.lines().map(str::to_string);
        (
            lines.next().unwrap(),
            lines.next().unwrap(),
            lines.next().unwrap(),
        )
    }
}

#[test]
fn dispatch_runs_the_binary_beside_it_from_any_directory() {
    let charm = FakeCharm::new();
    let binary = charm.dir.join("github-runner").display().to_string();
    let dispatch = charm.dir.join("dispatch");

    let got = charm.run(&dispatch, &charm.elsewhere, Some("actions/flush-runners"));
    assert_eq!(
        got,
        (binary.clone(), "actions/flush-runners".into(), "0".into())
    );

    // Unset: the path dispatch was called by names the event.
    let got = charm.run(&dispatch, &charm.elsewhere, None);
    assert_eq!(got.1, dispatch.display().to_string());
    let got = charm.run(Path::new("./dispatch"), &charm.dir, None);
    assert_eq!((got.0, got.1), (binary.clone(), "./dispatch".into()));

    // Through a symlink elsewhere, the binary is still the one beside the real file.
    let link = charm.elsewhere.join("dispatch-link");
    std::os::unix::fs::symlink(&dispatch, &link).unwrap();
    let got = charm.run(&link, &charm.elsewhere, Some("hooks/start"));
    assert_eq!((got.0, got.1), (binary, "hooks/start".into()));
}

#[test]
fn hooks_hand_over_to_dispatch_with_their_event() {
    let charm = FakeCharm::new();
    for hook in HOOKS {
        let got = charm.run(&charm.dir.join("hooks").join(hook), &charm.elsewhere, None);
        assert_eq!(got.1, format!("hooks/{hook}"));
        assert_eq!(got.0, charm.dir.join("github-runner").display().to_string());
    }
    // A path Juju already set wins.
    let got = charm.run(
        &charm.dir.join("hooks/install"),
        &charm.dir,
        Some("hooks/install"),
    );
    assert_eq!(got.1, "hooks/install");
}

fn sorted(mut names: Vec<&str>) -> Vec<&str> {
    names.sort_unstable();
    names
}
