use super::*;

fn limits(per_source: usize, total: usize) -> Limits {
    Limits {
        per_source,
        total,
        ..Limits::RUNNERS
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn charm_binds_must_be_loopback() {
    let ok: LoopbackAddr = "127.0.0.1:8080".parse().unwrap();
    assert_eq!(ok.addr(), "127.0.0.1:8080".parse().unwrap());
    assert!("[::1]:8080".parse::<LoopbackAddr>().is_ok());
    let err = "10.1.2.1:8080".parse::<LoopbackAddr>().unwrap_err();
    assert!(matches!(err, BindError::NotLoopback(_)), "{err}");
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    assert!("0.0.0.0:8080".parse::<LoopbackAddr>().is_err());
    assert!(matches!(
        "localhost".parse::<LoopbackAddr>(),
        Err(BindError::NotAnAddress { .. })
    ));
}

#[test]
fn one_source_gets_its_share_and_no_more() {
    let gate = Gate::new(limits(2, 10));
    let a = ip("10.0.0.5");
    let held: Vec<_> = (0..2).map(|_| gate.admit(a).unwrap()).collect();
    assert_eq!(gate.admit(a).unwrap_err(), Refusal::Source);
    // Another source is not affected.
    let other = gate.admit(ip("10.0.0.6")).unwrap();
    assert_eq!(gate.open(a), (3, 2));
    drop(held);
    assert_eq!(gate.open(a), (1, 0));
    assert!(gate.admit(a).is_ok());
    drop(other);
}

#[test]
fn the_total_bounds_every_source_together() {
    let gate = Gate::new(limits(5, 3));
    let held: Vec<_> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        .iter()
        .map(|s| gate.admit(ip(s)).unwrap())
        .collect();
    assert_eq!(gate.admit(ip("10.0.0.4")).unwrap_err(), Refusal::Total);
    drop(held);
    assert_eq!(gate.open(ip("10.0.0.4")), (0, 0));
    assert!(gate.admit(ip("10.0.0.4")).is_ok());
}

#[test]
fn a_mapped_ipv4_peer_counts_as_its_ipv4_address() {
    let gate = Gate::new(limits(1, 10));
    let _v4 = gate.admit(ip("10.0.0.5")).unwrap();
    assert_eq!(
        gate.admit(ip("::ffff:10.0.0.5")).unwrap_err(),
        Refusal::Source
    );
}
