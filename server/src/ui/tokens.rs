//! The token screens' service: the same token engine the REST API uses,
//! for the caller of the request.

use app::error::AppError;
use app::tokens::{
    ConnectionTest, DayUses, DeleteOutcome, ProviderName, TokenDetail, TokenFormOptions,
    TokenHistoryEntry, TokenInput, TokenListQuery, TokenPage, TokenView, TokensService,
};
use leptos::server_fn::http_export::request::Parts;

use crate::audit::AuditFilter;
use crate::http::caller::Authenticated;
use crate::startup::Instance;
use crate::tokens::TokenQuery;
use crate::tokens::engine::Answer;

/// The token screens' data and actions: the same engine the REST API uses.
pub struct TokensFacade {
    instance: Instance,
}

impl TokensFacade {
    /// Wraps the instance.
    pub fn new(instance: Instance) -> Self {
        Self { instance }
    }
}

fn none_if_empty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

#[async_trait::async_trait]
impl TokensService for TokensFacade {
    async fn list(&self, parts: &Parts, query: TokenListQuery) -> Result<TokenPage, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.instance
            .tokens
            .tokens
            .list(
                &caller,
                &TokenQuery {
                    q: none_if_empty(query.q),
                    status: none_if_empty(query.status),
                    provider_id: none_if_empty(query.provider_id),
                    flow: none_if_empty(query.flow),
                    sort: none_if_empty(query.sort),
                    unused_days: (query.unused_days > 0).then_some(query.unused_days),
                    order: query.desc.then(|| "desc".to_owned()),
                    offset: Some(query.offset),
                    limit: Some(50),
                },
            )
            .await
    }

    async fn detail(&self, parts: &Parts, id: String) -> Result<TokenDetail, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        let tokens = &self.instance.tokens.tokens;
        let model = tokens.visible(&caller, &id).await?;
        let token = tokens.view(&model, None).await?;
        let (entries, _) = self
            .instance
            .tokens
            .audit
            .query(
                &AuditFilter {
                    object_kind: Some("token".into()),
                    object_id: Some(id),
                    ..AuditFilter::default()
                },
                0,
                100,
            )
            .await
            .map_err(crate::tokens::db_error)?;
        // Someone else's failed attempt at this token is for admins' eyes:
        // the owner sees successes and their own (and the system's) entries.
        let own_key_suffix = format!("({})", caller.user.email);
        let shown = |e: &crate::audit::AuditEntry| {
            caller.is_admin()
                || e.outcome == "success"
                || e.actor_kind == "system"
                || e.actor_id.as_deref() == Some(caller.user.id.as_str())
                || (e.actor_kind == "api_key" && e.actor_label.ends_with(&own_key_suffix))
        };
        let history = entries
            .into_iter()
            .filter(|e| shown(e))
            .map(|e| TokenHistoryEntry {
                at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                action: e.action,
                outcome: e.outcome,
                actor: e.actor_label,
                detail: e.detail,
            })
            .collect();
        let (_, usage) = tokens.usage_of(&model).await?;
        let bars: Vec<(String, u64)> = usage.iter().map(|(d, n)| (d.to_string(), *n)).collect();
        Ok(TokenDetail {
            token,
            history,
            usage_chart: super::charts::bar_chart("Access tokens handed out per day", &bars),
            usage: bars
                .into_iter()
                .map(|(date, uses)| DayUses { date, uses })
                .collect(),
        })
    }

    async fn form_options(&self, parts: &Parts) -> Result<TokenFormOptions, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        let providers = self.instance.providers.choices(&caller).await?;
        Ok(TokenFormOptions {
            providers,
            redirect_uri: self.instance.config.redirect_uri(),
        })
    }

    async fn provider_names(&self, parts: &Parts) -> Result<Vec<ProviderName>, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        self.instance.providers.names(&caller).await
    }

    async fn create(&self, parts: &Parts, input: TokenInput) -> Result<TokenView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance.tokens.create(&caller, input, addr).await
    }

    async fn update(
        &self,
        parts: &Parts,
        id: String,
        input: TokenInput,
    ) -> Result<TokenView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance.tokens.update(&caller, &id, input, addr).await
    }

    async fn request(&self, parts: &Parts, id: String) -> Result<TokenView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        shown(self.instance.tokens.request(&caller, &id, addr).await)
    }

    async fn refresh(&self, parts: &Parts, id: String) -> Result<TokenView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        shown(self.instance.tokens.refresh(&caller, &id, addr).await)
    }

    async fn reset(&self, parts: &Parts, id: String) -> Result<TokenView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        shown(
            self.instance
                .tokens
                .reset(&caller, &id, app::tokens::ResetInput::default(), addr)
                .await,
        )
    }

    async fn delete(&self, parts: &Parts, id: String) -> Result<DeleteOutcome, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance.tokens.delete(&caller, &id, addr).await
    }

    async fn auth_link(&self, parts: &Parts, id: String) -> Result<String, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance.tokens.auth_link(&caller, &id, addr).await
    }

    async fn test(&self, parts: &Parts, id: String) -> Result<ConnectionTest, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance
            .tokens
            .test_connection(&caller, &id, addr)
            .await
    }

    async fn promote_secret(&self, parts: &Parts, id: String) -> Result<TokenView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        self.instance
            .tokens
            .promote_secret(&caller, &id, addr)
            .await
    }
}

/// What the token screens show after Refresh, Request again or Reset: the
/// token with the provider's stored words when it refused; the refusal
/// itself when nothing about it is stored (a token that must be
/// authorized again).
fn shown(answer: Result<Answer, AppError>) -> Result<TokenView, AppError> {
    let answer = answer?;
    match answer.refusal {
        Some(refusal) if answer.view.error.is_none() => Err(refusal),
        _ => Ok(answer.view),
    }
}
