//! `token_uses`: how often a token was handed out to one caller within one
//! hour or one day.

use sea_orm::entity::prelude::*;

/// The length of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Span {
    /// An hour starting on the hour (UTC); kept two days.
    #[sea_orm(string_value = "hour")]
    Hour,
    /// A day starting at midnight UTC; kept a month.
    #[sea_orm(string_value = "day")]
    Day,
}

/// How the caller signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum Via {
    /// `caller_id` is an API key's id.
    #[sea_orm(string_value = "api_key")]
    ApiKey,
    /// `caller_id` is a user's id (a browser session).
    #[sea_orm(string_value = "session")]
    Session,
}

/// Uses of one token by one caller in one bucket.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "token_uses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub caller_id: String,
    pub via: Via,
    #[sea_orm(primary_key, auto_increment = false)]
    pub span: Span,
    #[sea_orm(primary_key, auto_increment = false)]
    pub starts_at: DateTimeUtc,
    pub uses: i64,
}

/// No relation is navigated from code.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
