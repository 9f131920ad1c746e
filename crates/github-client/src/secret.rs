//! Secrets in server text: GitHub's messages might echo what we sent, so they are
//! scrubbed before they reach an error. The secrets themselves are [`ghr_types::Secret`].

/// Replaces every occurrence of each secret in `text`, for messages that come from a
/// server and so might echo what we sent.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_string(), |acc, s| acc.replace(s, "<redacted>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_echoed_secrets() {
        assert_eq!(
            scrub("bad token ghp_abcdef here", &["ghp_abcdef"]),
            "bad token <redacted> here"
        );
        assert_eq!(scrub("short a", &["a"]), "short a");
    }
}
