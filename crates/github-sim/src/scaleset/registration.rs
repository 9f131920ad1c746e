//! The way into the actions service: `POST /actions/runner-registration` trades a
//! registration token for the service URL and an admin token (a JWT whose `exp`
//! clients read to refresh it in time), and the checks every service call makes on
//! that token. A tenant is the scope the service URL was issued for.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::world::AdminToken;
use crate::api::error;
use crate::runner_tokens::{random_token, TokenKind};
use crate::runners::origin;
use crate::state::{Scope, World};
use crate::Sim;

/// The path segment naming a scope in service URLs: `org`, or `owner~repo` (`~` is in
/// no GitHub name).
pub fn tenant(scope: &Scope) -> String {
    match scope {
        Scope::Org(org) => org.clone(),
        Scope::Repo(full) => full.replace('/', "~"),
    }
}

pub fn scope_of_tenant(tenant: &str) -> Scope {
    match tenant.split_once('~') {
        Some((owner, repo)) => Scope::Repo(format!("{owner}/{repo}")),
        None => Scope::Org(tenant.to_string()),
    }
}

/// The actions service URL of a scope, as clients reach this simulator.
pub fn service_url(headers: &HeaderMap, scope: &Scope) -> String {
    format!("{}/_services/{}/", origin(headers), tenant(scope))
}

/// The token of an `Authorization: RemoteAuth X` header.
fn remote_auth(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("RemoteAuth")
        .then(|| token.trim())
}

#[derive(Deserialize)]
pub(super) struct Registration {
    url: String,
    #[serde(default)]
    runner_event: String,
}

pub(super) async fn runner_registration(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Option<Json<Registration>>,
) -> Response {
    let Some(Json(body)) = body else {
        return error(StatusCode::BAD_REQUEST, "a JSON body with url is required");
    };
    if body.runner_event != "register" {
        return error(StatusCode::BAD_REQUEST, "runner_event must be register");
    }
    let path = url::Url::parse(&body.url).map(|u| u.path().to_string());
    let Some(scope) = path.ok().and_then(|p| Scope::from_url_path(&p)) else {
        return error(
            StatusCode::NOT_FOUND,
            "the URL names neither an org nor a repository",
        );
    };
    let now = Utc::now();
    let mut world = sim.lock();
    let valid = remote_auth(&headers)
        .is_some_and(|t| world.token_valid(t, TokenKind::Registration, &scope, now));
    if !valid {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let token = world.issue_admin_token(scope.clone(), now);
    let url = service_url(&headers, &scope);
    Json(json!({"url": url, "token": token, "token_schema": "OAuthAccessToken"})).into_response()
}

/// An unsigned-looking JWT: clients only read its `exp`; the simulator looks it up.
fn admin_jwt(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims =
        json!({"iat": now.timestamp(), "exp": expires_at.timestamp(), "jti": random_token(16)});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature = URL_SAFE_NO_PAD.encode(random_token(32));
    format!("{header}.{payload}.{signature}")
}

impl World {
    pub fn issue_admin_token(&mut self, scope: Scope, now: DateTime<Utc>) -> String {
        let ttl = self.scalesets.settings.admin_token_ttl;
        let expires_at =
            now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1));
        let token = admin_jwt(expires_at, now);
        let entry = AdminToken { scope, expires_at };
        self.scalesets.admin_tokens.insert(token.clone(), entry);
        token
    }

    /// Whether `token` is a live admin token for `scope`.
    pub fn admin_token_valid(&self, token: &str, scope: &Scope, now: DateTime<Utc>) -> bool {
        self.scalesets
            .admin_tokens
            .get(token)
            .is_some_and(|t| &t.scope == scope && now < t.expires_at)
    }

    /// Makes every admin token and queue token stop working, as if they expired.
    pub fn expire_service_tokens(&mut self) {
        self.scalesets.admin_tokens.clear();
        for set in self.scalesets.sets.values_mut() {
            if let Some(session) = set.session.as_mut() {
                session.token_valid = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_round_trip_and_admin_tokens_expire() {
        for scope in [Scope::Org("acme".into()), Scope::Repo("o/r.x".into())] {
            assert_eq!(scope_of_tenant(&tenant(&scope)), scope);
        }
        let mut w = World::for_tests(1);
        let acme = Scope::Org("acme".into());
        let now = Utc::now();
        let token = w.issue_admin_token(acme.clone(), now);
        let claims = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["exp"].as_i64(), Some(now.timestamp() + 3600));
        assert!(w.admin_token_valid(&token, &acme, now));
        assert!(!w.admin_token_valid(&token, &Scope::Org("x".into()), now));
        assert!(!w.admin_token_valid(&token, &acme, now + chrono::Duration::hours(2)));
        w.expire_service_tokens();
        assert!(!w.admin_token_valid(&token, &acme, now));
    }
}
