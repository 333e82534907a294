//! `instance_settings`: instance-wide values such as the master key's id
//! and its sealed canary.

use sea_orm::entity::prelude::*;

/// One instance-wide value.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "instance_settings")]
pub struct Model {
    /// The setting's name.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Its value; sealed when the setting is secret.
    #[sea_orm(column_type = "Text")]
    pub value: String,
    /// When it was last written.
    pub updated_at: DateTimeUtc,
}

/// `instance_settings` has no relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
