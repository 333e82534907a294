//! `users`: local accounts.

use sea_orm::entity::prelude::*;

/// A local account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// A UUID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Lower-cased email, unique.
    #[sea_orm(unique)]
    pub email: String,
    /// Argon2id PHC string.
    #[sea_orm(column_type = "Text")]
    pub password_hash: String,
    /// `admin` or `user`.
    pub role: String,
    /// A disabled account cannot log in and its sessions and keys stop working.
    pub disabled: bool,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last changed.
    pub updated_at: DateTimeUtc,
}

/// `users` is referenced by sessions and API keys.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
