//! Renders the runner's pre-job script (templates/pre-job.sh): the policy service's URL,
//! the runner's one-time token and the runner name it is bound to go into the template,
//! shell-quoted.

use ghr_types::shell::quote;
use ghr_types::template;

const TEMPLATE: &str = include_str!("../templates/pre-job.sh");

/// The pre-job script for one runner. `policy_url` is the service's base URL as the
/// instance reaches it (e.g. `http://10.216.1.1:8080`, no trailing slash needed);
/// `runner_name` is the name the token was issued for.
pub fn render_pre_job(policy_url: &str, one_time_token: &str, runner_name: &str) -> String {
    template::fill(
        TEMPLATE,
        &[
            ("POLICY_URL", &quote(policy_url.trim_end_matches('/'))),
            ("ONE_TIME_TOKEN", &quote(one_time_token)),
            ("RUNNER_NAME", &quote(runner_name)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/pre-job.sh");

    /// `UPDATE_GOLDEN=1 cargo test -p policy-service prejob` rewrites the golden file.
    #[test]
    fn matches_golden_file() {
        let rendered = render_pre_job(
            "http://10.216.1.1:8080/",
            &"ab".repeat(32),
            "github-runner-0-0123abcd",
        );
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(GOLDEN, &rendered).unwrap();
        }
        let golden = std::fs::read_to_string(GOLDEN)
            .expect("golden file; run with UPDATE_GOLDEN=1 to create");
        assert_eq!(rendered, golden);
    }

    #[test]
    fn values_are_quoted_and_placeholders_filled() {
        let script = render_pre_job("http://h:1", "it's", "r'1");
        assert!(script.contains("POLICY_URL='http://h:1'\n"));
        assert!(script.contains(r"ONE_TIME_TOKEN='it'\''s'"));
        assert!(script.contains(r"TOKEN_RUNNER_NAME='r'\''1'"));
        assert!(
            !script.contains("@@"),
            "the template has no placeholder left"
        );
    }
}
