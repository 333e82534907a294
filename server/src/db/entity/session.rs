//! `sessions`: browser and script sessions, stored by the hash of their id.

use sea_orm::entity::prelude::*;

/// One session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    /// SHA-256 of the session id, hex: the cookie value itself is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_hash: String,
    /// The user.
    pub user_id: String,
    /// Created at login.
    pub created_at: DateTimeUtc,
    /// Last request; idle expiry counts from here.
    pub last_seen_at: DateTimeUtc,
    /// Absolute expiry.
    pub expires_at: DateTimeUtc,
    /// The address that logged in.
    pub client_addr: Option<String>,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
