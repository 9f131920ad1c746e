use super::*;

/// The names and ids the example paths carry; none may survive templating.
const NAMES: &[&str] = &[
    "acme",
    "octo",
    "widget",
    "feature",
    "main",
    "alice",
    "4242",
    "17",
    "12",
    "99",
    "3fa85f64",
    "tenant",
    "groupName",
    "per_page",
    "v3",
    "ci",
];

/// One example of every path the client builds, as GitHub's REST API (at the root and
/// under GHES's `/api/v3`) and the Actions service (under a tenant prefix) see it,
/// with its template.
const REST: &[(&str, &str)] = &[
    (
        "/orgs/acme/actions/runners/registration-token",
        "/orgs/{}/actions/runners/registration-token",
    ),
    (
        "/repos/octo/widget/actions/runners/remove-token",
        "/repos/{}/{}/actions/runners/remove-token",
    ),
    (
        "/orgs/acme/actions/runners/downloads",
        "/orgs/{}/actions/runners/downloads",
    ),
    (
        "/orgs/acme/actions/runners?per_page=100",
        "/orgs/{}/actions/runners",
    ),
    (
        "/repos/octo/widget/actions/runners/4242",
        "/repos/{}/{}/actions/runners/{}",
    ),
    (
        "/orgs/acme/actions/runner-groups?per_page=100&page=2",
        "/orgs/{}/actions/runner-groups",
    ),
    (
        "/repos/octo/widget/actions/runners/generate-jitconfig",
        "/repos/{}/{}/actions/runners/generate-jitconfig",
    ),
    (
        "/actions/runner-registration",
        "/actions/runner-registration",
    ),
    ("/repos/octo/widget", "/repos/{}/{}"),
    (
        "/app/installations/4242/access_tokens",
        "/app/installations/{}/access_tokens",
    ),
    (
        "/repos/octo/widget/branches/feature%2Fx",
        "/repos/{}/{}/branches/{}",
    ),
    (
        "/repos/octo/widget/branches/main/protection",
        "/repos/{}/{}/branches/{}/protection",
    ),
    (
        "/repos/octo/widget/collaborators?affiliation=outside&per_page=100",
        "/repos/{}/{}/collaborators",
    ),
    (
        "/repos/octo/widget/collaborators/alice/permission",
        "/repos/{}/{}/collaborators/{}/permission",
    ),
    (
        "/repos/octo/widget/pulls?state=open&per_page=100",
        "/repos/{}/{}/pulls",
    ),
    (
        "/repos/octo/widget/issues/17/comments?per_page=100",
        "/repos/{}/{}/issues/{}/comments",
    ),
    ("/rate_limit", "/rate_limit"),
];

const SERVICE: &[(&str, &str)] = &[
    (
        "/_apis/runtime/runnergroups/?groupName=ci&api-version=6.0-preview",
        "/_apis/runtime/runnergroups/",
    ),
    (
        "/_apis/runtime/runnerscalesets?runnerGroupId=1&name=ci",
        "/_apis/runtime/runnerscalesets",
    ),
    (
        "/_apis/runtime/runnerscalesets/12",
        "/_apis/runtime/runnerscalesets/{}",
    ),
    (
        "/_apis/runtime/runnerscalesets/12/generatejitconfig",
        "/_apis/runtime/runnerscalesets/{}/generatejitconfig",
    ),
    (
        "/_apis/distributedtask/pools/0/agents?agentName=ci",
        "/_apis/distributedtask/pools/0/agents",
    ),
    (
        "/_apis/distributedtask/pools/0/agents/99",
        "/_apis/distributedtask/pools/0/agents/{}",
    ),
    (
        "/_apis/runtime/runnerscalesets/12/sessions",
        "/_apis/runtime/runnerscalesets/{}/sessions",
    ),
    (
        "/_apis/runtime/runnerscalesets/12/sessions/3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "/_apis/runtime/runnerscalesets/{}/sessions/{}",
    ),
    (
        "/_apis/runtime/runnerscalesets/12/acquirejobs",
        "/_apis/runtime/runnerscalesets/{}/acquirejobs",
    ),
];

fn assert_templates(base: &str, table: &[(&str, &str)]) {
    for (path, expected) in table {
        let full = format!("{}{path}", base.trim_end_matches('/'));
        let template = route(base, &full);
        assert_eq!(&template, expected, "{full} under {base}");
        for name in NAMES {
            assert!(!template.contains(name), "{name} left in {template}");
        }
    }
}

#[test]
fn every_rest_path_templates_to_its_route_at_the_root_and_under_ghes() {
    assert_templates("/", REST);
    assert_templates("/api/v3", REST);
    assert_templates("/api/v3/", REST);
}

#[test]
fn every_service_path_templates_without_its_tenant_prefix() {
    assert_templates("/tenant-3fa85f64/", SERVICE);
    assert_templates("/_services/acme~widget/", SERVICE);
}

#[test]
fn a_path_outside_the_base_is_templated_whole() {
    assert_eq!(
        route("/api/v3", "/api/v3x/orgs/acme"),
        "/{}/{}/orgs/{}",
        "a base is a whole segment prefix"
    );
    assert_eq!(route("/api/v3", "/elsewhere/acme"), "/{}/{}");
}

#[test]
fn the_word_list_has_no_duplicates_and_no_placeholder() {
    let mut words = ROUTE_WORDS.to_vec();
    words.sort_unstable();
    words.dedup();
    assert_eq!(words.len(), ROUTE_WORDS.len());
    assert!(ROUTE_WORDS
        .iter()
        .all(|w| !w.is_empty() && !w.contains('/')));
}
