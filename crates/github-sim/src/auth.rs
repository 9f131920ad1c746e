//! Who a GitHub REST request authenticates as, decided for [`super::api`]'s guard: a
//! PAT from `/_sim/tokens`, an App installation token (`ghs_...`, only within its
//! installation's account, only until it expires), or, on the one route that takes it,
//! an App's JWT ([`super::app_jwt`]).

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};

use super::api::{presented_token, template};
use super::state::World;

/// The route that trades an App's JWT for an installation token; no other takes a JWT.
pub const ACCESS_TOKENS: &str = "/app/installations/:installation_id/access_tokens";

const BAD_CREDENTIALS: &str = "Bad credentials";

/// The verdict on one request's credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// A PAT, or an installation token acting within its account.
    Granted,
    /// A JWT that App `0` signed, on [`ACCESS_TOKENS`].
    App(u64),
    /// An installation token on another account's org or repository: GitHub answers
    /// 404 there (it does not say the resource exists), after counting the request.
    OutOfScope,
    /// 401 with this message.
    Refused(&'static str),
}

/// The App a JWT was verified as, handed to the access-token route.
#[derive(Clone, Copy, Debug)]
pub struct VerifiedApp(pub u64);

/// The verdict for a request to `route` (a template without `/api/v3`) at `path`.
pub fn authenticate(
    world: &World,
    route: &str,
    path: &str,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> Auth {
    let presented = presented_token(headers);
    if route == ACCESS_TOKENS {
        // No header at all is as undecodable as a malformed JWT.
        let github_now = now.timestamp() + world.apps.settings.clock_offset_secs;
        return match super::app_jwt::verify(&world.apps, presented.unwrap_or(""), github_now) {
            Ok(app_id) => Auth::App(app_id),
            Err(refusal) => Auth::Refused(refusal.message()),
        };
    }
    let Some(token) = presented else {
        return Auth::Refused(BAD_CREDENTIALS);
    };
    if world.tokens.contains(token) {
        return Auth::Granted;
    }
    match world.apps.tokens.get(token) {
        Some(t) if now < t.expires_at && within(&template(path), &t.account) => Auth::Granted,
        Some(t) if now < t.expires_at => Auth::OutOfScope,
        _ => Auth::Refused(BAD_CREDENTIALS),
    }
}

/// Whether `path` stays within `account`: `/orgs/{account}/...` and
/// `/repos/{account}/...` do (logins compare case-insensitively, as on GitHub); paths
/// of no account (`/rate_limit`) do too.
fn within(path: &str, account: &str) -> bool {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some("orgs" | "repos"), Some(owner)) => owner.eq_ignore_ascii_case(account),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::InstallationToken;
    use axum::http::HeaderValue;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        headers.insert("authorization", value);
        headers
    }

    #[test]
    fn installation_tokens_act_within_their_account_until_they_expire() {
        let mut world = World::for_tests(10);
        world.tokens.insert("ghp_pat".into());
        let now = Utc::now();
        let token = InstallationToken {
            app_id: 1,
            installation_id: 2,
            account: "Acme".into(),
            expires_at: now + chrono::Duration::seconds(5),
        };
        world.apps.tokens.insert("ghs_x".into(), token);
        let runners = "/orgs/:org/actions/runners";
        let auth =
            |path: &str, token: &str, at| authenticate(&world, runners, path, &bearer(token), at);
        assert_eq!(
            auth("/orgs/acme/actions/runners", "ghs_x", now),
            Auth::Granted
        );
        assert_eq!(auth("/api/v3/repos/acme/web", "ghs_x", now), Auth::Granted);
        assert_eq!(auth("/rate_limit", "ghs_x", now), Auth::Granted);
        assert_eq!(
            auth("/orgs/other/actions/runners", "ghs_x", now),
            Auth::OutOfScope
        );
        assert_eq!(
            auth("/api/v3/repos/other/web", "ghs_x", now),
            Auth::OutOfScope
        );
        let later = now + chrono::Duration::seconds(5);
        let expired = auth("/orgs/acme/actions/runners", "ghs_x", later);
        assert_eq!(expired, Auth::Refused(BAD_CREDENTIALS));
        assert_eq!(auth("/orgs/other/x", "ghp_pat", later), Auth::Granted);
        assert_eq!(
            auth("/orgs/acme/x", "ghp_nope", now),
            Auth::Refused(BAD_CREDENTIALS)
        );
    }

    #[test]
    fn the_access_token_route_takes_only_a_jwt() {
        let mut world = World::for_tests(10);
        world.tokens.insert("ghp_pat".into());
        let path = "/app/installations/1/access_tokens";
        let undecodable = Auth::Refused(crate::app_jwt::JwtRefusal::Undecodable.message());
        let auth = authenticate(&world, ACCESS_TOKENS, path, &bearer("ghp_pat"), Utc::now());
        assert_eq!(auth, undecodable, "a PAT is no JWT");
        let auth = authenticate(&world, ACCESS_TOKENS, path, &HeaderMap::new(), Utc::now());
        assert_eq!(auth, undecodable);
    }
}
