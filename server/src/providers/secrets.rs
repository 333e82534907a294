//! Client-secret rotation, the same for a provider's default client and a
//! token's own client: the current secret and optionally the next one (both
//! sealed, write-only), each with an optional expiry at the provider, and
//! which of the two the provider last accepted.

use app::error::AppError;
use app::providers::{SecretRotation, SecretSlot};
use chrono::{DateTime, NaiveDate, Utc};

use crate::account::ops::rfc3339;

/// A secret's coming expiry is announced this many days ahead.
pub const SECRET_WARNING_DAYS: i64 = 30;

/// An expiry as typed: RFC 3339, or a date (`YYYY-MM-DD`, the end of that
/// day in UTC, as provider portals show it); empty clears.
pub fn parse_expiry(field: &'static str, text: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(end) = day.and_hms_opt(23, 59, 59)
    {
        return Ok(Some(end.and_utc()));
    }
    Err(AppError::invalid(
        field,
        "must be a date (YYYY-MM-DD) or an RFC 3339 time such as 2027-03-31T00:00:00Z",
    ))
}

/// The rotation columns of a provider or token row.
pub struct RotationColumns<'a> {
    pub next_client_secret: &'a Option<String>,
    pub client_secret_expires_at: Option<DateTime<Utc>>,
    pub next_client_secret_expires_at: Option<DateTime<Utc>>,
    pub secret_in_use: Option<SecretSlot>,
    pub secret_in_use_since: Option<DateTime<Utc>>,
}

impl RotationColumns<'_> {
    /// As shown: never a secret.
    pub fn view(&self) -> SecretRotation {
        SecretRotation {
            has_next_client_secret: self.next_client_secret.is_some(),
            client_secret_expires_at: self.client_secret_expires_at.map(rfc3339),
            next_client_secret_expires_at: self.next_client_secret_expires_at.map(rfc3339),
            secret_in_use: self.secret_in_use,
            secret_in_use_since: self.secret_in_use_since.map(rfc3339),
        }
    }
}

impl<'a> From<&'a crate::db::entity::provider::Model> for RotationColumns<'a> {
    fn from(m: &'a crate::db::entity::provider::Model) -> Self {
        Self {
            next_client_secret: &m.next_client_secret,
            client_secret_expires_at: m.client_secret_expires_at,
            next_client_secret_expires_at: m.next_client_secret_expires_at,
            secret_in_use: m.secret_in_use,
            secret_in_use_since: m.secret_in_use_since,
        }
    }
}

impl<'a> From<&'a crate::db::entity::token::Model> for RotationColumns<'a> {
    fn from(m: &'a crate::db::entity::token::Model) -> Self {
        Self {
            next_client_secret: &m.next_client_secret,
            client_secret_expires_at: m.client_secret_expires_at,
            next_client_secret_expires_at: m.next_client_secret_expires_at,
            secret_in_use: m.secret_in_use,
            secret_in_use_since: m.secret_in_use_since,
        }
    }
}

/// One secret whose coming expiry may be announced.
struct Expiring<'a> {
    slot: SecretSlot,
    set: bool,
    expires_at: Option<DateTime<Utc>>,
    announced_for: Option<DateTime<Utc>>,
    /// Whose: "provider X" or "token X".
    whose: &'a str,
    /// The other secret is set (the next one, for the current).
    other_set: bool,
}

impl<'a> Expiring<'a> {
    /// The current and the next secret of one client: whether each is set,
    /// its expiry, and the expiry announced.
    fn pair(
        whose: &'a str,
        set: [bool; 2],
        expires_at: [Option<DateTime<Utc>>; 2],
        announced_for: [Option<DateTime<Utc>>; 2],
    ) -> [Self; 2] {
        [SecretSlot::Current, SecretSlot::Next].map(|slot| {
            let (this, other) = match slot {
                SecretSlot::Current => (0, 1),
                SecretSlot::Next => (1, 0),
            };
            Expiring {
                slot,
                set: set[this],
                expires_at: expires_at[this],
                announced_for: announced_for[this],
                whose,
                other_set: set[other],
            }
        })
    }

    fn due(&self, horizon: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let at = self.expires_at?;
        (self.set && at <= horizon && self.announced_for != Some(at)).then_some(at)
    }

    /// One sentence for people: when, and what to do.
    fn message(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> String {
        let secret = match self.slot {
            SecretSlot::Current => "client secret",
            SecretSlot::Next => "next client secret",
        };
        let date = at.format("%Y-%m-%d");
        let when = if at <= now {
            format!("expired on {date}")
        } else {
            // Whole days left, counting a started day.
            let days = ((at - now).num_seconds() + 86_399) / 86_400;
            format!("expires in {days} days, on {date}")
        };
        let todo = match (self.slot, self.other_set) {
            (SecretSlot::Current, true) => {
                "promote the next secret once the provider has switched to it"
            }
            (SecretSlot::Current, false) => {
                "create a new secret at the provider and add it here as the next secret"
            }
            (SecretSlot::Next, _) => "create a newer secret at the provider and add it here",
        };
        format!("The {secret} of {} {when}: {todo}.", self.whose)
    }
}

/// Marks `at` announced in `column` of row `id`, only where it is not
/// announced yet: true for the one replica that marked it.
async fn mark<E: sea_orm::EntityTrait>(
    db: &sea_orm::DatabaseConnection,
    id_column: E::Column,
    id: &str,
    column: E::Column,
    at: DateTime<Utc>,
) -> bool {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, Condition, QueryFilter};
    let marked = E::update_many()
        .col_expr(column, Expr::value(at))
        .filter(id_column.eq(id))
        .filter(Condition::any().add(column.is_null()).add(column.ne(at)))
        .exec(db)
        .await;
    matches!(marked, Ok(r) if r.rows_affected == 1)
}

impl super::Providers {
    /// Raises `provider.secret_expiring` once for each client secret (a
    /// provider's default client's, current or next, and a token's own)
    /// that expires within [`SECRET_WARNING_DAYS`] or has expired. Replicas
    /// share the work: an expiry is announced by whichever marks it first.
    /// Returns how many were announced.
    pub async fn announce_expiring_secrets(&self, events: &crate::events::Events) -> usize {
        use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};

        use crate::db::entity::{provider, token};
        use crate::events::EventKind;

        let now = self.clock.now();
        let horizon = now + chrono::Duration::days(SECRET_WARNING_DAYS);
        let mut announced = 0;
        let providers = provider::Entity::find()
            .filter(
                Condition::any()
                    .add(provider::Column::ClientSecretExpiresAt.lte(horizon))
                    .add(provider::Column::NextClientSecretExpiresAt.lte(horizon)),
            )
            .all(&self.db)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read the providers' secret expiries");
                Vec::new()
            });
        for p in providers {
            let whose = format!("provider {}", p.name);
            let secrets = Expiring::pair(
                &whose,
                [p.client_secret.is_some(), p.next_client_secret.is_some()],
                [p.client_secret_expires_at, p.next_client_secret_expires_at],
                [
                    p.secret_expiry_announced_for,
                    p.next_secret_expiry_announced_for,
                ],
            );
            let columns = [
                provider::Column::SecretExpiryAnnouncedFor,
                provider::Column::NextSecretExpiryAnnouncedFor,
            ];
            for (e, column) in secrets.into_iter().zip(columns) {
                let Some(at) = e.due(horizon) else { continue };
                if !mark::<provider::Entity>(&self.db, provider::Column::Id, &p.id, column, at)
                    .await
                {
                    continue;
                }
                let detail = serde_json::json!({
                    "provider_id": p.id,
                    "provider_name": p.name,
                    "secret": e.slot,
                    "expires_at": rfc3339(at),
                    "other_secret_set": e.other_set,
                });
                events
                    .raise(
                        EventKind::SecretExpiring,
                        None,
                        None,
                        e.message(at, now),
                        detail,
                    )
                    .await;
                announced += 1;
            }
        }
        let tokens = token::Entity::find()
            .filter(token::Column::UseDefaultKeys.eq(false))
            .filter(
                Condition::any()
                    .add(token::Column::ClientSecretExpiresAt.lte(horizon))
                    .add(token::Column::NextClientSecretExpiresAt.lte(horizon)),
            )
            .all(&self.db)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read the tokens' secret expiries");
                Vec::new()
            });
        for t in tokens {
            let whose = format!("token {}", t.name);
            let secrets = Expiring::pair(
                &whose,
                [t.client_secret.is_some(), t.next_client_secret.is_some()],
                [t.client_secret_expires_at, t.next_client_secret_expires_at],
                [
                    t.secret_expiry_announced_for,
                    t.next_secret_expiry_announced_for,
                ],
            );
            let columns = [
                token::Column::SecretExpiryAnnouncedFor,
                token::Column::NextSecretExpiryAnnouncedFor,
            ];
            for (e, column) in secrets.into_iter().zip(columns) {
                let Some(at) = e.due(horizon) else { continue };
                if !mark::<token::Entity>(&self.db, token::Column::Id, &t.id, column, at).await {
                    continue;
                }
                let detail = serde_json::json!({
                    "token_name": t.name,
                    "provider_id": t.provider_id,
                    "secret": e.slot,
                    "expires_at": rfc3339(at),
                    "other_secret_set": e.other_set,
                });
                events
                    .raise(
                        EventKind::SecretExpiring,
                        Some(&t.id),
                        None,
                        e.message(at, now),
                        detail,
                    )
                    .await;
                announced += 1;
            }
        }
        announced
    }
}

#[cfg(test)]
mod tests {
    use super::parse_expiry;

    #[test]
    fn an_expiry_is_a_date_or_a_time_and_anything_else_is_named() {
        assert_eq!(
            parse_expiry("f", "2027-03-31")
                .unwrap()
                .unwrap()
                .to_rfc3339(),
            "2027-03-31T23:59:59+00:00"
        );
        assert_eq!(
            parse_expiry("f", "2027-03-31T10:00:00+02:00")
                .unwrap()
                .unwrap()
                .to_rfc3339(),
            "2027-03-31T08:00:00+00:00"
        );
        assert_eq!(parse_expiry("f", " ").unwrap(), None);
        let e = parse_expiry("client_secret_expires_at", "next year").unwrap_err();
        assert_eq!(e.field(), Some("client_secret_expires_at"));
    }
}
