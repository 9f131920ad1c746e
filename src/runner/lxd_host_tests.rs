use super::*;
use reconcile::ports::PortErrorKind;

fn not_found() -> LxdError {
    LxdError::NotFound {
        message: "Image alias not found".into(),
    }
}

#[test]
fn a_missing_local_image_needs_the_operator_and_names_it() {
    let e = creation_error(&ImageSource::local("jammy-ci"), not_found());
    assert_eq!(e.kind, PortErrorKind::NeedsOperator);
    assert!(e.message().contains("runner-image \"jammy-ci\""), "{e}");
    let source = std::error::Error::source(&e).expect("LXD's error under it");
    assert!(source.downcast_ref::<LxdError>().unwrap().is_not_found());
}

#[test]
fn other_creation_failures_are_transient() {
    let remote = ImageSource::simplestreams("https://images.example", "22.04");
    assert_eq!(
        creation_error(&remote, not_found()).kind,
        PortErrorKind::Transient
    );
    let local = ImageSource::local("jammy-ci");
    for e in [
        LxdError::Api {
            status: 500,
            message: "Failed creating instance record".into(),
        },
        LxdError::Timeout {
            what: "create".into(),
            after: Duration::from_secs(1),
        },
        LxdError::Busy {
            message: "Instance is busy running a \"create\" operation".into(),
        },
    ] {
        let e = creation_error(&local, e);
        assert_eq!(e.kind, PortErrorKind::Transient, "{e}");
        assert!(e.message().starts_with("LXD: "), "{e}");
    }
}

/// Ages are measured by the clock handed in, not the machine's: an instance made
/// 100 s before the clock's time is 100 s old, and ages as the clock moves.
#[test]
fn ages_come_from_the_clock() {
    use ghr_types::clock::ManualClock;
    let clock = ManualClock::at(1_700_000_000);
    let prefix = RunnerPrefix::from_unit("app/0");
    let mine = prefix.new_name();
    let instance = |name: &str, created_at: &str| -> Instance {
        serde_json::from_value(serde_json::json!({
            "name": name, "status": "Running", "created_at": created_at,
        }))
        .unwrap()
    };
    // 1_700_000_000 is 2023-11-14T22:13:20Z.
    let listed = || {
        vec![
            instance(mine.as_str(), "2023-11-14T22:11:40Z"),
            instance("someone-else", "2023-11-14T22:11:40Z"),
        ]
    };
    let seen = own_instances(listed(), &prefix, clock.wall());
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].name.as_str(), seen[0].age_secs),
        (mine.as_str(), 100)
    );
    assert!(seen[0].running);
    clock.sleep(Duration::from_secs(600));
    let seen = own_instances(listed(), &prefix, clock.wall());
    assert_eq!(seen[0].age_secs, 700);
}
