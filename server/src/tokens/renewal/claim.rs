//! The claim on a token's renewal in the database: a lease naming a random
//! claim id, taken only while no other claim's lease is live, and given up
//! only by the claim that holds it.

use app::error::AppError;
use chrono::{DateTime, Duration, Utc};
use sea_orm::QueryTrait as _;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter};

use super::{LEASE_MARGIN, Renewal};
use crate::db::entity::token;
use crate::providers::OpenedProvider;
use crate::tokens::engine::TokenEngine;
use crate::tokens::{TokenStatus, db_error};

/// One claim on a token's renewal; the lease names its random id, so that
/// no other caller, in this process or another, mistakes it for its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim(pub(super) String);

impl Claim {
    /// A new claim.
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl Default for Claim {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenEngine {
    /// How long a claim on a token of `provider` lasts: every provider
    /// call of `renewal` within the provider's timeout, plus a margin.
    pub fn lease_for(provider: &OpenedProvider, renewal: &Renewal) -> Duration {
        Duration::milliseconds(i64::from(provider.model.timeout_ms.max(0))) * renewal.calls()
            + LEASE_MARGIN
    }

    pub(crate) async fn reload(&self, id: &str) -> Result<token::Model, AppError> {
        token::Entity::find_by_id(id.to_owned())
            .one(&self.tokens.db)
            .await
            .map_err(db_error)?
            .ok_or_else(|| AppError::NotFound("the token".into()))
    }

    /// Claims the token for `claim` unless another claim's lease is live.
    pub(super) async fn claim(
        &self,
        id: &str,
        claim: &Claim,
        lease: Duration,
    ) -> Result<bool, AppError> {
        let now = self.tokens.clock.now();
        let statement = token::Entity::update_many()
            .col_expr(token::Column::LeaseOwner, Expr::value(claim.0.clone()))
            .col_expr(token::Column::LeaseUntil, Expr::value(now + lease))
            .filter(token::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(token::Column::LeaseUntil.is_null())
                    .add(token::Column::LeaseUntil.lt(now)),
            )
            .build(self.tokens.db.get_database_backend());
        let written = self
            .tokens
            .writes
            .execute(statement)
            .await
            .map_err(db_error)?;
        Ok(written.rows_affected == 1)
    }

    /// Claims, for `claim`, those of `ids` that are still due and free, in
    /// one statement, and answers the claimed rows as they are now.
    pub(crate) async fn claim_due(
        &self,
        ids: &[String],
        claim: &Claim,
        lease: Duration,
    ) -> Result<Vec<token::Model>, AppError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.tokens.clock.now();
        let mut statement = token::Entity::update_many()
            .col_expr(token::Column::LeaseOwner, Expr::value(claim.0.clone()))
            .col_expr(token::Column::LeaseUntil, Expr::value(now + lease))
            .filter(token::Column::Id.is_in(ids.iter().cloned()))
            .filter(token::Column::AutoRefresh.eq(true))
            .filter(token::Column::RefreshDueAt.lte(now))
            .filter(token::Column::Status.ne(TokenStatus::PendingAuthorization))
            .filter(
                Condition::any()
                    .add(token::Column::LeaseUntil.is_null())
                    .add(token::Column::LeaseUntil.lt(now)),
            )
            .into_query();
        statement.returning_all();
        let statement = self.tokens.db.get_database_backend().build(&statement);
        let rows = self
            .tokens
            .writes
            .returning_rows(statement)
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|row| token::Model::from_query_result(row, ""))
            .collect::<Result<Vec<_>, _>>()
            .map_err(db_error)
    }

    /// Gives up `claim` on the token, if it still holds it.
    pub(crate) async fn release(&self, id: &str, claim: &Claim) {
        let statement = token::Entity::update_many()
            .col_expr(
                token::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                token::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(token::Column::Id.eq(id))
            .filter(token::Column::LeaseOwner.eq(claim.0.clone()))
            .build(self.tokens.db.get_database_backend());
        if let Err(e) = self.tokens.writes.execute(statement).await {
            tracing::warn!(token = id, error = %e, "cannot release a renewal claim; it lapses with its lease");
        }
    }
}
