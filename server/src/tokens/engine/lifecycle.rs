//! The token lifecycle commands: create, request, refresh, reset, delete
//! (with revocation), rename and edit, each audited.

use app::error::AppError;
use app::tokens::{DeleteOutcome, ResetInput, TokenInput, TokenView};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};

use super::{Answer, Mode, TokenEngine, clean, invalid};
use crate::audit::Actor;
use crate::auth::Caller;
use crate::db::entity::token;
use crate::tokens::renewal::due;
use crate::tokens::renewal::{Need, Renewal, Renewed, refusal};
use crate::tokens::{Flow, TokenStatus, db_error};

impl TokenEngine {
    /// Creates a token and, unless `request` is false, requests it at once.
    /// A provider refusal still answers with the saved token (status `failed`).
    pub async fn create(
        &self,
        caller: &Caller,
        input: TokenInput,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let request_now = input.request.unwrap_or(true);
        let created = self.insert(caller, input).await;
        let id = created.as_ref().ok().map(|t| t.id.clone());
        let created = self
            .audited(caller.actor(), &addr, "token.create", id, created, None)
            .await?;
        if request_now {
            match self.request(caller, &created.id, addr).await {
                Ok(answer) => Ok(answer.view),
                // An interactive token whose authorization request the
                // provider refused is saved, with the refusal on it.
                Err(e) if created.flow.is_interactive() => {
                    let saved = self.tokens.visible(caller, &created.id).await?;
                    if saved.last_error.is_some() {
                        self.tokens.view(&saved, None).await
                    } else {
                        Err(e)
                    }
                }
                Err(e) => Err(e),
            }
        } else {
            self.tokens.view(&created, None).await
        }
    }

    async fn insert(&self, caller: &Caller, input: TokenInput) -> Result<token::Model, AppError> {
        let name = clean(input.name.clone()).ok_or_else(|| invalid("name", "is required"))?;
        if name.chars().count() > 100 {
            return Err(invalid("name", "must be at most 100 characters"));
        }
        let provider_id = clean(input.provider_id.clone())
            .ok_or_else(|| invalid("provider_id", "is required"))?;
        let provider = self
            .providers
            .open(&provider_id)
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) => invalid("provider_id", "no provider has this id"),
                other => other,
            })?;
        let flow: Flow = clean(input.flow.clone())
            .ok_or_else(|| invalid("flow", "is required"))?
            .parse()?;
        let now = self.now();
        let id = uuid::Uuid::new_v4().to_string();
        let mut active = token::ActiveModel {
            id: Set(id.clone()),
            name: Set(name),
            owner_id: Set(caller.user.id.clone()),
            provider_id: Set(provider_id),
            flow: Set(flow),
            status: Set(TokenStatus::Failed),
            additional_values: Set("{}".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        self.apply_settings(&id, &mut active, &provider, flow, &input, true)?;
        self.apply_test_request(caller, &mut active, &input)?;
        let model = active.insert(&self.tokens.db).await.map_err(db_error)?;
        Ok(model)
    }

    /// Renames and edits a token.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        input: TokenInput,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let result = async {
            let existing = self.tokens.visible(caller, id).await?;
            if input
                .provider_id
                .as_deref()
                .is_some_and(|p| p != existing.provider_id)
            {
                return Err(invalid(
                    "provider_id",
                    "cannot be changed; create a new token",
                ));
            }
            let flow: Flow = match clean(input.flow.clone()) {
                Some(f) => f.parse()?,
                None => existing.flow,
            };
            let provider = self.providers.open(&existing.provider_id).await?;
            let mut active: token::ActiveModel = existing.into();
            if let Some(name) = input.name.as_deref().map(str::trim) {
                if name.is_empty() || name.chars().count() > 100 {
                    return Err(invalid("name", "must be 1 to 100 characters"));
                }
                active.name = Set(name.to_owned());
            }
            active.flow = Set(flow);
            self.apply_settings(id, &mut active, &provider, flow, &input, false)?;
            self.apply_test_request(caller, &mut active, &input)?;
            active.updated_at = Set(self.now());
            let mut model = active.update(&self.tokens.db).await.map_err(db_error)?;
            // New auto-refresh settings move the next renewal, unless the
            // token is backing off after failures.
            let due = if model.failure_count == 0 || !model.auto_refresh {
                due::next_due(&model, self.settings.idle_refresh_interval)
            } else {
                model.refresh_due_at
            };
            if due != model.refresh_due_at {
                let mut active: token::ActiveModel = model.into();
                active.refresh_due_at = Set(due);
                model = active.update(&self.tokens.db).await.map_err(db_error)?;
            }
            self.tokens.view(&model, None).await
        }
        .await;
        let action = if input.name.is_some()
            && input
                == (TokenInput {
                    name: input.name.clone(),
                    ..Default::default()
                }) {
            "token.rename"
        } else {
            "token.update"
        };
        self.audited(
            caller.actor(),
            &addr,
            action,
            Some(id.to_owned()),
            result,
            None,
        )
        .await
    }

    /// Makes the token's own next client secret the current one (with its
    /// expiry), once the provider has retired the old secret.
    pub async fn promote_secret(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<TokenView, AppError> {
        let result = async {
            let existing = self.tokens.visible(caller, id).await?;
            if existing.use_default_keys {
                return Err(invalid(
                    "use_default_keys",
                    "the token uses its provider's keys: promote the provider's next secret instead",
                ));
            }
            let next = crate::tokens::open_secret(
                &self.tokens.sealer,
                id,
                "next_client_secret",
                &existing.next_client_secret,
            )?
            .ok_or_else(|| {
                invalid(
                    "next_client_secret",
                    "is not set: there is no next secret to promote",
                )
            })?;
            let mut active: token::ActiveModel = existing.clone().into();
            active.client_secret = Set(Some(self.seal(id, "client_secret", next.expose())));
            active.client_secret_expires_at = Set(existing.next_client_secret_expires_at);
            active.secret_expiry_announced_for = Set(existing.next_secret_expiry_announced_for);
            active.next_client_secret = Set(None);
            active.next_client_secret_expires_at = Set(None);
            active.next_secret_expiry_announced_for = Set(None);
            active.secret_in_use = Set(None);
            active.secret_in_use_since = Set(None);
            active.updated_at = Set(self.now());
            let model = active.update(&self.tokens.db).await.map_err(db_error)?;
            self.tokens.view(&model, None).await
        }
        .await;
        self.audited(
            caller.actor(),
            &addr,
            "token.promote_secret",
            Some(id.to_owned()),
            result,
            None,
        )
        .await
    }

    /// The token if the caller may see it; otherwise the refusal is audited.
    async fn visible_or_audit(
        &self,
        caller: &Caller,
        addr: &Option<String>,
        action: &'static str,
        id: &str,
    ) -> Result<token::Model, AppError> {
        match self.tokens.visible(caller, id).await {
            Ok(t) => Ok(t),
            Err(e) => {
                self.audited(
                    caller.actor(),
                    addr,
                    action,
                    Some(id.to_owned()),
                    Err(e),
                    None,
                )
                .await
            }
        }
    }

    /// Deletes a token, revoking it at the provider first when the provider
    /// has a revocation endpoint; deletes it anyway when revocation fails,
    /// and says so.
    pub async fn delete(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<DeleteOutcome, AppError> {
        let result = async {
            let t = self.tokens.visible(caller, id).await?;
            let provider = self.providers.open(&t.provider_id).await?;
            let (revocation, revocation_error) = self.revoke_at_provider(&t, &provider).await;
            token::Entity::delete_by_id(t.id.clone())
                .exec(&self.tokens.db)
                .await
                .map_err(db_error)?;
            Ok(DeleteOutcome {
                id: t.id,
                revocation,
                revocation_error,
            })
        }
        .await;
        let detail = result.as_ref().ok().map(|o| {
            format!(
                "revocation: {}{}",
                o.revocation,
                o.revocation_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        });
        self.audited(
            caller.actor(),
            &addr,
            "token.delete",
            Some(id.to_owned()),
            result,
            detail,
        )
        .await
    }

    /// Deletes a provider. While tokens use it this is refused unless
    /// `force` (admins only), and then each token is revoked at the provider
    /// and deleted first. Answers how many tokens went and what revocation did.
    pub async fn delete_provider(
        &self,
        caller: &Caller,
        id: &str,
        force: bool,
        addr: Option<String>,
    ) -> Result<(u64, Vec<DeleteOutcome>), AppError> {
        let mut revocations = Vec::new();
        if force && caller.is_admin() {
            for token_id in self.providers.token_ids(id).await? {
                if let Ok(outcome) = self.delete(caller, &token_id, addr.clone()).await {
                    revocations.push(outcome);
                }
            }
        }
        let rest = self.providers.delete(caller, id, force, addr).await?;
        Ok((rest + revocations.len() as u64, revocations))
    }

    /// Requests the token anew: Client Credentials and Password obtain one;
    /// the interactive flows answer with the link to authorize.
    pub async fn request(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<Answer, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.request", id)
            .await?;
        let flow = t.flow;
        if flow.is_interactive() {
            // Requesting an interactive token means: here is where a
            // person authorizes it.
            let link = self.make_link(caller, id).await;
            let result = match link {
                Ok(url) => {
                    let t = self.tokens.visible(caller, id).await?;
                    self.tokens.view(&t, Some(url)).await
                }
                Err(e) => Err(e),
            };
            let view = self
                .audited(
                    caller.actor(),
                    &addr,
                    "token.request",
                    Some(id.to_owned()),
                    result,
                    Some("auth link issued".into()),
                )
                .await?;
            return Ok(Answer {
                view,
                refusal: None,
            });
        }
        if flow == Flow::DeviceCode {
            // Requesting a Device Code token means: a new code for its person.
            let started = self.start_device(&t).await;
            let refusal = started
                .as_ref()
                .err()
                .map(|e| refusal(&t, Some(&super::token_error(e))));
            let detail = match &started {
                Ok(_) => "device code issued".to_owned(),
                Err(e) => format!("failed: {e}"),
            };
            let t = self.tokens.visible(caller, id).await?;
            let view = self
                .audited(
                    caller.actor(),
                    &addr,
                    "token.request",
                    Some(id.to_owned()),
                    self.tokens.view(&t, None).await,
                    Some(detail),
                )
                .await?;
            return Ok(Answer { view, refusal });
        }
        let outcome = self
            .renew(
                &t,
                Renewal::Request,
                Need::Always,
                caller.actor(),
                addr.clone(),
                Mode::Asked,
            )
            .await;
        self.answer(caller.actor(), &addr, &t, Renewal::Request, outcome)
            .await
    }

    /// Refreshes: the refresh_token grant when there is a refresh token
    /// (Password falls back to its saved credentials when that fails with
    /// `invalid_grant`); Client Credentials and Password without one
    /// request anew. A refresh asked for while a renewal of the token is in
    /// flight answers that renewal's result.
    pub async fn refresh(
        &self,
        caller: &Caller,
        id: &str,
        addr: Option<String>,
    ) -> Result<Answer, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.refresh", id)
            .await?;
        let need = Need::Since {
            seen: t.last_refreshed_at,
            asked: self.now(),
        };
        let outcome = self
            .renew(
                &t,
                Renewal::Refresh,
                need,
                caller.actor(),
                addr.clone(),
                Mode::Asked,
            )
            .await;
        self.answer(caller.actor(), &addr, &t, Renewal::Refresh, outcome)
            .await
    }

    /// Reset Client Credentials: revoke the current token, then issue a new
    /// one; given overrides replace the token's scope, resource and
    /// additional values, absent or `null` ones keep them.
    pub async fn reset(
        &self,
        caller: &Caller,
        id: &str,
        overrides: ResetInput,
        addr: Option<String>,
    ) -> Result<Answer, AppError> {
        let t = self
            .visible_or_audit(caller, &addr, "token.reset", id)
            .await?;
        self.reset_as(caller.actor(), t, overrides, addr, Mode::Asked)
            .await
    }

    /// Resets `t` for `actor` (a person, a key, or a scheduled job).
    pub(crate) async fn reset_as(
        &self,
        actor: Actor,
        t: token::Model,
        overrides: ResetInput,
        addr: Option<String>,
        mode: Mode,
    ) -> Result<Answer, AppError> {
        if t.flow != Flow::ClientCredentials {
            return self
                .audited(
                    actor,
                    &addr,
                    "token.reset",
                    Some(t.id.clone()),
                    Err(invalid(
                        "flow",
                        "Reset Client Credentials applies to Client Credentials tokens only",
                    )),
                    None,
                )
                .await;
        }
        let renewal = Renewal::Reset(overrides);
        let outcome = self
            .renew(
                &t,
                renewal.clone(),
                Need::Always,
                actor.clone(),
                addr.clone(),
                mode,
            )
            .await;
        self.answer(actor, &addr, &t, renewal, outcome).await
    }

    /// Refreshes `t` for a scheduled job: answered by any renewal stored
    /// since the job read the token.
    pub(crate) async fn refresh_for_job(
        &self,
        actor: Actor,
        t: token::Model,
        asked: chrono::DateTime<chrono::Utc>,
    ) -> Result<Answer, AppError> {
        let need = Need::Since {
            seen: t.last_refreshed_at,
            asked,
        };
        let outcome = self
            .renew(
                &t,
                Renewal::Refresh,
                need,
                actor.clone(),
                None,
                Mode::Background,
            )
            .await;
        self.answer(actor, &None, &t, Renewal::Refresh, outcome)
            .await
    }

    /// The answer to a renewal someone asked for. A renewal that called the
    /// provider was audited when it was stored; one answered by another
    /// caller's renewal is audited here, as the asker's action.
    async fn answer(
        &self,
        actor: Actor,
        addr: &Option<String>,
        t: &token::Model,
        renewal: Renewal,
        outcome: Result<(Renewed, bool), AppError>,
    ) -> Result<Answer, AppError> {
        match outcome {
            Ok((renewed, joined)) => {
                if joined || !renewed.called {
                    let detail = match &renewed.failure {
                        Some(e) => format!("failed: answered by a renewal in flight ({})", e.error),
                        None => "answered by a renewal in flight".to_owned(),
                    };
                    self.audited(
                        actor,
                        addr,
                        renewal.action(),
                        Some(t.id.clone()),
                        Ok(()),
                        Some(detail),
                    )
                    .await?;
                }
                let refusal = renewed
                    .failure
                    .as_ref()
                    .map(|e| refusal(&renewed.model, Some(e)));
                Ok(Answer {
                    view: self.tokens.view(&renewed.model, None).await?,
                    refusal,
                })
            }
            // Nothing to renew with: the token as it is, and what to do.
            Err(e @ AppError::NeedsReauthorization { .. }) => {
                let current = self.reload(&t.id).await?;
                Ok(Answer {
                    view: self.tokens.view(&current, None).await?,
                    refusal: Some(e),
                })
            }
            Err(e) => Err(e),
        }
    }
}
