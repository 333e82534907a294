//! `api_keys`: keys for automation, stored only as a hash.

use sea_orm::entity::prelude::*;

/// One API key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    /// A UUID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The user the key acts as.
    pub user_id: String,
    /// A name chosen by its creator.
    pub name: String,
    /// The key's first characters, shown to tell keys apart.
    pub prefix: String,
    /// SHA-256 of the key, hex.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// Created.
    pub created_at: DateTimeUtc,
    /// Last successful use.
    pub last_used_at: Option<DateTimeUtc>,
    /// When revoked; a revoked key never works again.
    pub revoked_at: Option<DateTimeUtc>,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
