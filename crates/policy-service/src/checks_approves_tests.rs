//! The approval comment parser: which comment lines approve which commit.

use super::tests::SHA;
use super::*;

#[test]
fn approves_reads_only_unquoted_lines() {
    assert!(approves(&format!("{RUN_WORKFLOWS_COMMAND} {SHA}"), SHA));
    assert!(approves(
        &format!("> quoted\n{RUN_WORKFLOWS_COMMAND}   {SHA}"),
        SHA
    ));
    assert!(!approves(&format!("> {RUN_WORKFLOWS_COMMAND} {SHA}"), SHA));
    assert!(!approves(
        &format!("  > {RUN_WORKFLOWS_COMMAND} {SHA}"),
        SHA
    ));
    assert!(!approves(&format!("{RUN_WORKFLOWS_COMMAND}{SHA}"), SHA));
    assert!(!approves("", SHA));
}

#[test]
fn approves_finds_the_command_anywhere_in_a_line() {
    let approving = [
        format!("`{RUN_WORKFLOWS_COMMAND} {SHA}`"),
        format!("{RUN_WORKFLOWS_COMMAND} {SHA}."),
        format!("Reviewed, looks fine: {RUN_WORKFLOWS_COMMAND} {SHA} once CI is green"),
        format!(
            "LGTM\n\nthanks! {RUN_WORKFLOWS_COMMAND}\t{}!",
            SHA.to_uppercase()
        ),
    ];
    for body in &approving {
        assert!(approves(body, SHA), "{body:?}");
    }
}

#[test]
fn approves_needs_this_whole_commit_id() {
    let other = "fedcba9876543210fedcba9876543210fedcba98";
    let refusing = [
        format!("{RUN_WORKFLOWS_COMMAND} {other}"),
        format!("{RUN_WORKFLOWS_COMMAND} {}", &SHA[..7]),
        format!("`{RUN_WORKFLOWS_COMMAND} {}`", &SHA[..39]),
        format!("{RUN_WORKFLOWS_COMMAND} {SHA}0"),
        format!("{RUN_WORKFLOWS_COMMAND}\n{SHA}"),
        format!("> `{RUN_WORKFLOWS_COMMAND} {SHA}`."),
    ];
    for body in &refusing {
        assert!(!approves(body, SHA), "{body:?}");
    }
    // Another command's approval further along the line still counts.
    let both = format!("{RUN_WORKFLOWS_COMMAND} {other}, {RUN_WORKFLOWS_COMMAND} {SHA}");
    assert!(approves(&both, SHA));
}
