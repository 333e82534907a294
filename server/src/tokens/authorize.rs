//! The interactive flows (Authorization Code and OIDC Hybrid): making the
//! link a person opens, and finishing at the callback.
//!
//! `state` is 256 random bits, stored only as its hash, single use, valid
//! for 10 minutes and bound to its token and provider; when a browser
//! session made the link, the callback must come from that session.

use std::collections::BTreeMap;

use app::error::AppError;
use app::tokens::{Identity, TokenError};
use chrono::Duration;
use oauth2::basic::BasicClient;
use oauth2::{AuthUrl, ClientId, CsrfToken, PkceCodeChallenge, RedirectUrl, ResponseType};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use url::Url;

use super::engine::{TokenEngine, token_error};
use super::{Flow, StoredIdentity, TokenStatus, db_error};
use crate::account::sessions::hash_token;
use crate::auth::{Caller, Via};
use crate::db::entity::{auth_request, token};
use crate::oauth::grant::GrantError;
use crate::oauth::id_token::{self, Expected, IdentityClaims};
use crate::oauth::token_response::MAX_KEPT_VALUE_BYTES;
use crate::oauth::{outbound, params, pushed};
use crate::providers::{kept_fields, params_map};
use crate::seal::SealSlot;

/// How long an authorization link stays valid.
pub const LINK_LIFETIME_MINUTES: i64 = 10;

/// What the callback received.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct CallbackParams {
    /// The `state` we sent.
    pub state: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// The hybrid id_token.
    pub id_token: Option<String>,
    /// RFC 9207 issuer.
    pub iss: Option<String>,
    /// An error from the provider.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
    /// Any other parameter of the authorization response: kept with the
    /// token when its provider keeps a field of that name (Intuit sends
    /// the company's `realmId` here, not in the token answer).
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// How the callback ended, for the page that tells the person.
#[derive(Debug, Clone)]
pub struct CallbackOutcome {
    /// The token, when the state identified one.
    pub token_id: Option<String>,
    /// Token name.
    pub token_name: Option<String>,
    /// `Active` or `Failed`.
    pub status: TokenStatus,
    /// What went wrong.
    pub message: Option<String>,
}

impl CallbackOutcome {
    fn refused(message: impl Into<String>) -> Self {
        Self {
            token_id: None,
            token_name: None,
            status: TokenStatus::Failed,
            message: Some(message.into()),
        }
    }
}

/// RFC 9207 against mix-up (RFC 9700 §4.4): an `iss` in the answer must be
/// exactly the provider's issuer; a missing one is refused when the provider
/// says it sends one, except in OIDC Hybrid, where the id_token's `iss`
/// (verified before anything else) names the issuer instead, and RFC 9207
/// lets the provider leave the parameter out. The error names the check.
fn check_iss(
    iss: Option<&str>,
    issuer: Option<&str>,
    iss_parameter_supported: bool,
    flow: Flow,
) -> Result<(), String> {
    match (iss, issuer) {
        (Some(iss), Some(issuer)) if iss == issuer => Ok(()),
        (Some(iss), Some(issuer)) => Err(format!(
            "the authorization response came from issuer {iss:?}, not the provider's issuer {issuer:?}"
        )),
        (Some(iss), None) => Err(format!(
            "the authorization response came from issuer {iss:?}, and the provider has no issuer to compare it with; set the provider's issuer"
        )),
        (None, _) if iss_parameter_supported && flow != Flow::OidcHybrid => Err(
            "the authorization response carries no iss, but the provider says it always sends one (authorization_response_iss_parameter_supported); it may come from another authorization server"
                .into(),
        ),
        (None, _) => Ok(()),
    }
}

/// The authorization request as the `oauth2` crate builds it: response
/// type, client, redirect URI, state and PKCE challenge, then `rest`.
fn authorization_request(
    endpoint: &Url,
    client_id: &str,
    redirect_uri: &str,
    state: String,
    challenge: Option<PkceCodeChallenge>,
    hybrid: bool,
    rest: &[(String, String)],
) -> Result<Url, AppError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| AppError::invalid("redirect_uri", format!("is not a URL: {e}")))?;
    let client = BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(AuthUrl::from_url(endpoint.clone()))
        .set_redirect_uri(redirect);
    let mut request = client.authorize_url(|| CsrfToken::new(state));
    if let Some(challenge) = challenge {
        request = request.set_pkce_challenge(challenge);
    }
    if hybrid {
        request = request.set_response_type(&ResponseType::new("code id_token".into()));
    }
    for (k, v) in rest {
        request = request.add_extra_param(k.clone(), v.clone());
    }
    Ok(request.url().0)
}

fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, buf)
}

impl TokenEngine {
    /// Makes a fresh authorization link for an interactive token (also
    /// re-authorizes an existing one).
    pub async fn auth_link(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<String, AppError> {
        let result = self.make_link(caller, id).await;
        self.audit_link(caller, id, addr, &result).await;
        result
    }

    async fn audit_link(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
        result: &Result<String, AppError>,
    ) {
        use crate::audit::{AuditEvent, Outcome};
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut event = AuditEvent::new(caller.actor(), "token.auth_link", "token", outcome)
            .object(id.to_owned())
            .from_addr(addr);
        if let Err(e) = result {
            event.detail = Some(e.to_string());
        }
        let _ = self.audit.record(event).await;
    }

    pub(crate) async fn make_link(&self, caller: &Caller, id: &str) -> Result<String, AppError> {
        let t = self.tokens.visible(caller, id).await?;
        let flow = t.flow;
        if !flow.is_interactive() {
            return Err(AppError::invalid(
                "flow",
                "auth links are for the Authorization Code and OIDC Hybrid flows",
            ));
        }
        let provider = self.providers.open(&t.provider_id).await?;
        let endpoint = provider
            .model
            .authorization_endpoint
            .clone()
            .ok_or_else(|| {
                AppError::invalid("flow", "the provider has no authorization endpoint")
            })?;
        let mut url = Url::parse(&endpoint)
            .map_err(|_| AppError::invalid("authorization_endpoint", "is not a URL"))?;
        let client_id = if t.use_default_keys {
            provider.model.client_id.clone()
        } else {
            t.client_id.clone()
        }
        .unwrap_or_default();
        let client_id_sent = client_id.clone();
        let state = random_text(32);
        let now = self.tokens.clock.now();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = (flow == Flow::OidcHybrid).then(|| random_text(24));
        let state_hash = hash_token(&state);
        let session_hash = match &caller.via {
            Via::Session { id_hash } => Some(id_hash.clone()),
            Via::ApiKey { .. } => None,
        };
        auth_request::ActiveModel {
            state_hash: Set(state_hash.clone()),
            token_id: Set(t.id.clone()),
            provider_id: Set(t.provider_id.clone()),
            session_hash: Set(session_hash),
            pkce_verifier: Set(self.tokens.sealer.seal(
                SealSlot::new("auth_requests", &state_hash, "pkce_verifier"),
                verifier.secret().as_bytes(),
            )),
            nonce: Set(nonce.clone()),
            created_at: Set(now),
            expires_at: Set(now + Duration::minutes(LINK_LIFETIME_MINUTES)),
        }
        .insert(&self.tokens.db)
        .await
        .map_err(db_error)?;
        // Quiver's own parameters, then the provider's extra ones, then
        // the token's the provider does not set: an extra value never
        // repeats or replaces state, redirect_uri or the PKCE challenge.
        let mut own: Vec<(String, String)> = vec![
            (
                "response_type".into(),
                if flow == Flow::OidcHybrid {
                    "code id_token"
                } else {
                    "code"
                }
                .into(),
            ),
            ("client_id".into(), client_id.clone()),
            ("redirect_uri".into(), self.settings.redirect_uri.clone()),
            ("state".into(), state.clone()),
        ];
        if let Some(scope) = &t.scope {
            own.push((
                "scope".into(),
                crate::oauth::params::scope_param(scope, &provider.model.scope_separator),
            ));
        }
        if provider.model.pkce {
            own.push(("code_challenge".into(), challenge.as_str().to_owned()));
            own.push((
                "code_challenge_method".into(),
                challenge.method().to_string(),
            ));
        }
        if let Some(nonce) = &nonce {
            own.push(("nonce".into(), nonce.clone()));
            own.push(("response_mode".into(), "form_post".into()));
        }
        if let Some(resource) = &t.resource {
            own.push(("resource".into(), resource.clone()));
        }
        let additional: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&t.additional_values).unwrap_or_default();
        let provider_params = params_map(&provider.model.authorize_params);
        for (source, name) in params::stored_reserved(&provider_params, &additional) {
            tracing::warn!(
                token = %t.id,
                provider = %provider.model.id,
                source,
                parameter = name,
                "an extra value named like a parameter Quiver sets itself is not sent; remove it"
            );
        }
        let extra = params::merge(&own, &provider_params, &additional);
        // The crate builds the request (response type, client, redirect,
        // state, PKCE); scope goes as Quiver joins it (some providers want
        // commas), with the rest after.
        const BY_THE_CRATE: &[&str] = &[
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "code_challenge",
            "code_challenge_method",
        ];
        let rest: Vec<(String, String)> = own
            .iter()
            .filter(|(k, _)| !BY_THE_CRATE.contains(&k.as_str()))
            .cloned()
            .chain(extra)
            .collect();
        let built = authorization_request(
            &url,
            &client_id_sent,
            &self.settings.redirect_uri,
            state,
            provider.model.pkce.then_some(challenge),
            flow == Flow::OidcHybrid,
            &rest,
        )?;
        match provider
            .model
            .pushed_authorization_request_endpoint
            .as_deref()
        {
            Some(par) => {
                // The request's parameters go to the provider, not the link.
                let before: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                let request: Vec<(String, String)> = built
                    .query_pairs()
                    .into_owned()
                    .filter(|pair| !before.contains(pair))
                    .collect();
                let pushed = match self.push_request(&t, &provider, par, request).await {
                    Ok(pushed) => pushed,
                    Err(e) => {
                        self.link_refused(&t, &e).await;
                        return Err(AppError::invalid(
                            "pushed_authorization_request_endpoint",
                            format!("the provider refused the pushed authorization request: {e}"),
                        ));
                    }
                };
                url.query_pairs_mut()
                    .append_pair("client_id", &client_id_sent)
                    .append_pair("request_uri", &pushed.request_uri);
            }
            None => url = built,
        }
        if t.access_token.is_none() {
            let mut active: token::ActiveModel = t.into();
            active.status = Set(TokenStatus::PendingAuthorization);
            active.updated_at = Set(now);
            active.update(&self.tokens.db).await.map_err(db_error)?;
        }
        Ok(url.to_string())
    }

    /// Pushes an authorization request (RFC 9126) for `t`; a refusal is
    /// the provider's words, naming the endpoint.
    async fn push_request(
        &self,
        t: &token::Model,
        provider: &crate::providers::OpenedProvider,
        endpoint: &str,
        request: Vec<(String, String)>,
    ) -> Result<pushed::PushedRequest, GrantError> {
        let url = Url::parse(endpoint)
            .map_err(|e| GrantError::Outbound(outbound::OutboundError::Refused(e.to_string())))?;
        let auth = self.client_auth(t, provider).map_err(|e| {
            GrantError::ClientAuth(crate::oauth::client_auth::ClientAuthError::Sign(
                e.to_string(),
            ))
        })?;
        let client = self.http_client(provider);
        pushed::push(&client, &url, &auth, request, self.tokens.clock.now()).await
    }

    /// Records why a link could not be made on a token that has no access
    /// token yet (one that has keeps working and says nothing new).
    async fn link_refused(&self, t: &token::Model, error: &GrantError) {
        if t.access_token.is_some() {
            return;
        }
        let mut active: token::ActiveModel = t.clone().into();
        active.status = Set(TokenStatus::Failed);
        active.last_error = Set(serde_json::to_string(&token_error(error)).ok());
        active.updated_at = Set(self.tokens.clock.now());
        if let Err(e) = active.update(&self.tokens.db).await {
            tracing::warn!(token = %t.id, error = %e, "could not record a refused authorization request");
        }
    }

    /// Finishes an authorization at the callback. `session_cookie` is the
    /// browser's session id, when it sent one.
    pub async fn callback(
        &self,
        params: CallbackParams,
        session_cookie: Option<String>,
    ) -> CallbackOutcome {
        use crate::audit::{Actor, AuditEvent, Outcome};
        let outcome = self.finish(params, session_cookie).await;
        let event = AuditEvent::new(
            Actor::System("oauth callback".into()),
            "token.authorize",
            "token",
            if outcome.status == TokenStatus::Active {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        );
        let mut event = event;
        event.object_id = outcome.token_id.clone();
        event.detail = outcome.message.clone();
        let _ = self.audit.record(event).await;
        outcome
    }

    async fn finish(
        &self,
        params: CallbackParams,
        session_cookie: Option<String>,
    ) -> CallbackOutcome {
        let Some(state) = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 200)
        else {
            return CallbackOutcome::refused(
                "The answer carries no state; it was not started by Quiver.",
            );
        };
        let state_hash = hash_token(state);
        let Ok(Some(pending)) = auth_request::Entity::find_by_id(state_hash.clone())
            .one(&self.tokens.db)
            .await
        else {
            return CallbackOutcome::refused("This authorization is unknown or was already used.");
        };
        // Single use: whoever deletes the row owns the callback.
        match auth_request::Entity::delete_by_id(state_hash.clone())
            .exec(&self.tokens.db)
            .await
        {
            Ok(r) if r.rows_affected == 1 => {}
            _ => {
                return CallbackOutcome::refused(
                    "This authorization is unknown or was already used.",
                );
            }
        }
        if self.tokens.clock.now() > pending.expires_at {
            return CallbackOutcome::refused("This authorization link expired; make a new one.");
        }
        if let Some(expected) = &pending.session_hash
            && session_cookie.as_deref().map(hash_token).as_ref() != Some(expected)
        {
            return CallbackOutcome::refused(
                "This authorization was started in another browser session; finish it where it began.",
            );
        }
        let Ok(Some(t)) = token::Entity::find_by_id(pending.token_id.clone())
            .one(&self.tokens.db)
            .await
        else {
            return CallbackOutcome::refused("The token of this authorization no longer exists.");
        };
        if t.provider_id != pending.provider_id {
            return CallbackOutcome::refused("This authorization was made for another provider.");
        }
        let mut outcome = CallbackOutcome {
            token_id: Some(t.id.clone()),
            token_name: Some(t.name.clone()),
            status: TokenStatus::Failed,
            message: None,
        };
        match self.exchange(&t, &pending, &params).await {
            Ok(()) => outcome.status = TokenStatus::Active,
            Err(error) => {
                // A token that holds an access token keeps it, and its
                // status: a refused answer never replaces the last good
                // token. The failure is recorded beside it, on the callback
                // page and in the audit log.
                let mut active: token::ActiveModel = t.clone().into();
                if t.access_token.is_none() {
                    active.status = Set(TokenStatus::Failed);
                }
                active.last_error = Set(Some(serde_json::to_string(&error).unwrap_or_default()));
                active.updated_at = Set(self.tokens.clock.now());
                let _ = active.update(&self.tokens.db).await;
                outcome.message = Some(format!(
                    "{}{}",
                    error.error,
                    error
                        .error_description
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ));
            }
        }
        outcome
    }

    async fn exchange(
        &self,
        t: &token::Model,
        pending: &auth_request::Model,
        params: &CallbackParams,
    ) -> Result<(), TokenError> {
        let fail = |error: &str, description: String| TokenError {
            error: error.to_owned(),
            error_description: Some(description),
            http_status: None,
            retry_after_seconds: None,
        };
        if let Some(error) = &params.error {
            return Err(TokenError {
                error: error.clone(),
                error_description: params.error_description.clone(),
                http_status: None,
                retry_after_seconds: None,
            });
        }
        let provider = self
            .providers
            .open(&t.provider_id)
            .await
            .map_err(|e| fail("invalid_configuration", e.to_string()))?;
        let flow = t.flow;
        let issuer = provider.model.issuer.clone();
        check_iss(
            params.iss.as_deref(),
            issuer.as_deref(),
            provider.model.iss_parameter_supported,
            flow,
        )
        .map_err(|d| fail("invalid_request", d))?;
        let issuer = issuer.unwrap_or_default();
        let code = params
            .code
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| fail("invalid_request", "the answer carries no code".into()))?;
        let client_id = if t.use_default_keys {
            provider.model.client_id.clone()
        } else {
            t.client_id.clone()
        }
        .unwrap_or_default();
        let mut jwks = None;
        let mut front: Option<IdentityClaims> = None;
        if flow == Flow::OidcHybrid {
            let id_token = params.id_token.as_deref().ok_or_else(|| {
                fail(
                    "invalid_request",
                    "the hybrid answer carries no id_token".into(),
                )
            })?;
            let keys = self
                .fetch_jwks(&provider.model)
                .await
                .map_err(|e| fail("invalid_configuration", e))?;
            let claims = id_token::verify(
                id_token,
                &keys,
                &Expected {
                    issuer: &issuer,
                    client_id: &client_id,
                    nonce: Some(pending.nonce.as_deref().unwrap_or_default()),
                    code: Some(&code),
                    access_token: None,
                },
            )
            .map_err(|e| fail("invalid_id_token", e.to_string()))?;
            front = Some(claims);
            jwks = Some(keys);
        }
        let verifier = self
            .tokens
            .sealer
            .open(
                SealSlot::new("auth_requests", &pending.state_hash, "pkce_verifier"),
                &pending.pkce_verifier,
            )
            .map_err(|e| fail("invalid_configuration", e.to_string()))?;
        let mut grant = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.clone()),
            (
                "redirect_uri".to_owned(),
                self.settings.redirect_uri.clone(),
            ),
        ];
        if provider.model.pkce {
            grant.push((
                "code_verifier".to_owned(),
                String::from_utf8_lossy(verifier.expose()).into_owned(),
            ));
        }
        let mut set = self
            .exchange_code(t, &provider, grant)
            .await
            .map_err(|e: GrantError| token_error(&e))?;
        // Kept fields the token answer lacks may come on the redirect.
        for name in kept_fields(&provider.model.keep_response_fields) {
            if let Some(value) = params
                .extra
                .get(&name)
                .filter(|v| v.len() <= MAX_KEPT_VALUE_BYTES)
            {
                set.fields.entry(name).or_insert_with(|| value.clone());
            }
        }
        // The token endpoint's id_token is verified like the front
        // channel's (OIDC Core 3.1.3.7, 3.3.3.6): a failure refuses the
        // whole answer, and its tokens are not stored. Without a JWKS URI
        // (Authorization Code only) it cannot be checked, and no identity
        // is kept.
        let back = match set.id_token.as_deref() {
            Some(id_token) if jwks.is_some() || provider.model.jwks_uri.is_some() => {
                let keys = match jwks.take() {
                    Some(keys) => keys,
                    None => self
                        .fetch_jwks(&provider.model)
                        .await
                        .map_err(|e| fail("invalid_configuration", e))?,
                };
                let claims = id_token::verify(
                    id_token,
                    &keys,
                    &Expected {
                        issuer: &issuer,
                        client_id: &client_id,
                        nonce: pending.nonce.as_deref(),
                        code: None,
                        access_token: Some(set.access_token.expose()),
                    },
                )
                .map_err(|e| fail("invalid_id_token", format!("token endpoint: {e}")))?;
                Some(claims)
            }
            _ => None,
        };
        let identity = match (front, back) {
            (Some(front), Some(back)) if back.sub != front.sub => {
                return Err(fail(
                    "invalid_id_token",
                    format!(
                        "the token endpoint's id_token is for subject {:?}, but the authorization response's is for {:?}",
                        back.sub, front.sub
                    ),
                ));
            }
            (Some(mut front), Some(back)) => {
                front.email = front.email.or(back.email);
                front.name = front.name.or(back.name);
                Some(front)
            }
            (front, back) => front.or(back),
        };
        let model = self
            .store_exchanged(t, &provider, set, &code)
            .await
            .map_err(|e| fail("internal", e.to_string()))?;
        let mut active: token::ActiveModel = model.into();
        active.identity = Set(identity.map(|identity| {
            serde_json::to_string(&StoredIdentity {
                identity: Identity {
                    sub: identity.sub,
                    email: identity.email,
                    name: identity.name,
                },
                verified: true,
            })
            .unwrap_or_default()
        }));
        active
            .update(&self.tokens.db)
            .await
            .map_err(|e| fail("internal", e.to_string()))?;
        Ok(())
    }

    async fn fetch_jwks(
        &self,
        p: &crate::db::entity::provider::Model,
    ) -> Result<jsonwebtoken::jwk::JwkSet, String> {
        let uri = p.jwks_uri.clone().ok_or("the provider has no JWKS URI")?;
        let client = self.http_for(p);
        let request = client.get(&uri).build().map_err(|e| e.to_string())?;
        let raw = outbound::send(&client, request)
            .await
            .map_err(|e| format!("cannot read the provider's JWKS: {e}"))?;
        serde_json::from_slice(&raw.body)
            .map_err(|_| "the provider's JWKS is not a JWK set".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iss_is_compared_exactly_and_required_where_promised() {
        let issuer = Some("https://idp.example");
        let code = Flow::AuthorizationCode;
        assert!(check_iss(Some("https://idp.example"), issuer, true, code).is_ok());
        for wrong in ["https://idp.example/", "https://evil.example", ""] {
            let message = check_iss(Some(wrong), issuer, false, code).unwrap_err();
            assert_eq!(
                message,
                format!(
                    "the authorization response came from issuer {wrong:?}, not the provider's issuer \"https://idp.example\""
                )
            );
        }
        assert!(
            check_iss(Some("https://idp.example"), None, false, code)
                .unwrap_err()
                .contains("has no issuer")
        );
        // Missing: refused where promised, except in OIDC Hybrid (the
        // verified id_token's iss names the issuer there).
        assert!(
            check_iss(None, issuer, true, code)
                .unwrap_err()
                .contains("authorization_response_iss_parameter_supported")
        );
        assert!(check_iss(None, issuer, true, Flow::OidcHybrid).is_ok());
        assert!(check_iss(None, issuer, false, code).is_ok());
        // A wrong iss is refused in OIDC Hybrid too.
        assert!(check_iss(Some("https://evil.example"), issuer, true, Flow::OidcHybrid).is_err());
    }
}
