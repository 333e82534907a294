//! Connection tests: whether the provider's API still takes a token. A
//! token that "looks active" can be refused by the API (consent withdrawn,
//! a licence gone, a scope no longer granted); the test makes the request
//! a provider names (its userinfo endpoint, a cheap API call) with the
//! access token as bearer and keeps what it saw, never the token itself.

use std::time::Instant;

use app::error::AppError;
use app::tokens::{ConnectionTest, TestMethod, TokenInput};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::{TokenEngine, clean, invalid};
use crate::account::ops::rfc3339;
use crate::auth::Caller;
use crate::db::entity::{provider, token};
use crate::events::EventKind;
use crate::oauth::outbound;
use crate::providers::OpenedProvider;
use crate::tokens::{db_error, open_secret};

/// How much of the answer a test keeps, in bytes.
const EXCERPT_BYTES: usize = 512;

/// The request a token's test makes: the token's own, else its provider's.
pub fn test_request(t: &token::Model, p: &provider::Model) -> Option<(String, TestMethod)> {
    match (&t.test_request_url, &p.test_request_url) {
        (Some(url), _) => Some((
            url.clone(),
            t.test_request_method
                .or(p.test_request_method)
                .unwrap_or_default(),
        )),
        (None, Some(url)) => Some((url.clone(), p.test_request_method.unwrap_or_default())),
        (None, None) => None,
    }
}

/// What an answer shows with the token masked, cut to [`EXCERPT_BYTES`]
/// (at a character boundary). The token is masked before the cut, so no
/// part of it survives at the end.
fn excerpt(body: &[u8], token: &str) -> String {
    let end = body.len().min(EXCERPT_BYTES + token.len());
    let mut text = String::from_utf8_lossy(&body[..end]).into_owned();
    if !token.is_empty() {
        text = text.replace(token, "[access token]");
    }
    if text.len() > EXCERPT_BYTES {
        let mut cut = EXCERPT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

impl TokenEngine {
    /// Runs `id`'s connection test with a fresh access token (renewed
    /// first when due, as the access-token endpoint does), keeps the
    /// outcome on the token and answers it.
    pub async fn test_connection(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<ConnectionTest, AppError> {
        let result = async {
            let t = self.tokens.visible(caller, id).await?;
            let provider = self.providers.open(&t.provider_id).await?;
            let (url, method) = test_request(&t, &provider.model).ok_or_else(|| {
                invalid(
                    "test_request_url",
                    "no connection test: the provider names no test request (an admin sets one on the provider or on this token)",
                )
            })?;
            let access = self.access_token(caller, id, addr.clone()).await?;
            let test = self
                .run_test(self.http_client(&provider), &url, method, access.access_token().expose())
                .await;
            self.record_test(&t.id, &test).await?;
            Ok(test)
        }
        .await;
        let detail = result.as_ref().ok().map(|test| {
            let outcome = match (test.status, &test.error) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(error)) => error.clone(),
                (None, None) => "no answer".into(),
            };
            let verdict = if test.ok { "passed" } else { "failed" };
            format!("{verdict}: {} {} answered {outcome}", test.method, test.url)
        });
        self.audited(
            caller.actor(),
            &addr,
            "token.test",
            Some(id.to_owned()),
            result,
            detail,
        )
        .await
    }

    /// After a renewal: tests the renewed token when its provider asks for
    /// it, and raises `token.test_failed` when the API refuses it. Runs on
    /// its own task, so the renewal's caller does not wait for it.
    pub(crate) fn test_after_renewal(&self, renewed: &token::Model, provider: &OpenedProvider) {
        if !provider.model.test_after_renewal {
            return;
        }
        let Some((url, method)) = test_request(renewed, &provider.model) else {
            return;
        };
        let Ok(Some(access)) = open_secret(
            &self.tokens.sealer,
            &renewed.id,
            "access_token",
            &renewed.access_token,
        ) else {
            return;
        };
        let engine = self.clone();
        let client = self.http_client(provider);
        let (id, name) = (renewed.id.clone(), renewed.name.clone());
        tokio::spawn(async move {
            let test = engine.run_test(client, &url, method, access.expose()).await;
            if let Err(e) = engine.record_test(&id, &test).await {
                tracing::warn!(token = %id, error = %e, "could not keep a connection test's outcome");
            }
            if !test.ok {
                let answered = match (test.status, &test.error) {
                    (Some(status), _) => format!("answered HTTP {status}"),
                    (None, Some(error)) => error.clone(),
                    (None, None) => "did not answer".into(),
                };
                engine
                    .events
                    .raise(
                        EventKind::TokenTestFailed,
                        Some(&id),
                        None,
                        format!(
                            "Token {name} was renewed, but its connection test failed: {} {} {answered}",
                            test.method, test.url
                        ),
                        serde_json::json!({"token_name": name, "test": test}),
                    )
                    .await;
            }
        });
    }

    /// Makes the test request with `access` as bearer.
    async fn run_test(
        &self,
        client: reqwest::Client,
        url: &str,
        method: TestMethod,
        access: &str,
    ) -> ConnectionTest {
        let tested_at = rfc3339(self.tokens.clock.now());
        let verb = match method {
            TestMethod::Get => reqwest::Method::GET,
            TestMethod::Post => reqwest::Method::POST,
            TestMethod::Head => reqwest::Method::HEAD,
        };
        let request = client
            .request(verb, url)
            .bearer_auth(access)
            .header(reqwest::header::ACCEPT, "application/json, */*;q=0.5");
        let request = if method == TestMethod::Post {
            request.body("")
        } else {
            request
        };
        let started = Instant::now();
        let answer = match request.build() {
            Ok(request) => outbound::send(&client, request).await,
            Err(e) => Err(outbound::OutboundError::Other(e.to_string())),
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match answer {
            Ok(raw) => ConnectionTest {
                ok: (200..300).contains(&raw.status),
                method,
                url: url.to_owned(),
                status: Some(raw.status),
                duration_ms,
                content_type: raw
                    .headers
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                excerpt: excerpt(&raw.body, access),
                error: None,
                tested_at,
            },
            Err(e) => ConnectionTest {
                ok: false,
                method,
                url: url.to_owned(),
                status: None,
                duration_ms,
                content_type: None,
                excerpt: String::new(),
                error: Some(e.to_string()),
                tested_at,
            },
        }
    }

    /// Keeps a test's outcome on the token, touching nothing else.
    async fn record_test(&self, id: &str, test: &ConnectionTest) -> Result<(), AppError> {
        token::Entity::update_many()
            .col_expr(
                token::Column::LastTestAt,
                Expr::value(self.tokens.clock.now()),
            )
            .col_expr(
                token::Column::LastTestStatus,
                Expr::value(test.status.map_or(0, i32::from)),
            )
            .col_expr(
                token::Column::LastTestResult,
                Expr::value(serde_json::to_string(test).ok()),
            )
            .filter(token::Column::Id.eq(id.to_owned()))
            .exec(&self.tokens.db)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// A token's own test request, which only an admin sets: it sends the
    /// token to a URL of the setter's choosing.
    pub(super) fn apply_test_request(
        &self,
        caller: &Caller,
        active: &mut token::ActiveModel,
        input: &TokenInput,
    ) -> Result<(), AppError> {
        if input.test_request_url.is_none() && input.test_request_method.is_none() {
            return Ok(());
        }
        if !caller.is_admin() {
            return Err(invalid(
                "test_request_url",
                "only an admin sets a token's own test request; the provider's applies",
            ));
        }
        if let Some(url) = input.test_request_url.clone() {
            let url = clean(Some(url));
            if let Some(u) = &url {
                crate::providers::check_test_request_url(
                    u,
                    self.providers.allows_insecure_loopback(),
                )?;
            }
            active.test_request_url = Set(url);
        }
        if let Some(method) = input.test_request_method.as_deref().map(str::trim) {
            active.test_request_method = Set(if method.is_empty() {
                None
            } else {
                Some(method.parse::<TestMethod>()?)
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_never_holds_the_token_even_across_the_cut() {
        let token = "secret-access-token-value";
        let echoed = format!(r#"{{"you_sent":"{token}","ok":true}}"#);
        let shown = excerpt(echoed.as_bytes(), token);
        assert!(!shown.contains(token), "{shown}");
        assert!(shown.contains("[access token]"));
        // The token straddling the 512th byte is masked, not half shown.
        let mut body = "x".repeat(EXCERPT_BYTES - 5);
        body.push_str(token);
        body.push_str(&"y".repeat(100));
        let shown = excerpt(body.as_bytes(), token);
        assert!(shown.len() <= EXCERPT_BYTES);
        assert!(!shown.contains("secre"), "{}", &shown[shown.len() - 20..]);
        // Multi-byte text is cut at a character boundary.
        let shown = excerpt("é".repeat(600).as_bytes(), token);
        assert!(shown.len() <= EXCERPT_BYTES && shown.chars().all(|c| c == 'é'));
    }
}
