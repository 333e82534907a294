//! `auth_requests`: pending authorization requests, by the hash of their
//! `state`; single use, expiring.

use sea_orm::entity::prelude::*;

/// One pending authorization request.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub state_hash: String,
    pub token_id: String,
    pub provider_id: String,
    /// Hash of the browser session that started it, when one did.
    pub session_hash: Option<String>,
    /// Sealed PKCE verifier.
    #[sea_orm(column_type = "Text")]
    pub pkce_verifier: String,
    pub nonce: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
