//! How a provider departs from the standard, as settings an admin can see
//! and change: where the token fields sit in its answer, which extra
//! answer fields to keep, how it wants refreshes sent, whether it rotates
//! refresh tokens, and the scope a new token starts with; its pushed
//! authorization request (RFC 9126) and device authorization (RFC 8628)
//! endpoints. Tokens keep the extra answer fields, and the authorization
//! code when the provider wants it again at refresh.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{boolean, string_null, text, text_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
    Template,
    DefaultScope,
    TokenResponsePath,
    KeepResponseFields,
    RefreshTokenRotates,
    OmitScopeOnRefresh,
    OmitCodeOnRefresh,
    UrlEncodeRefreshToken,
    SendClientIdInBody,
    PushedAuthorizationRequestEndpoint,
    DeviceAuthorizationEndpoint,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    ResponseFields,
    AuthorizationCode,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            string_null(Providers::Template),
            text_null(Providers::DefaultScope),
            string_null(Providers::TokenResponsePath),
            text(Providers::KeepResponseFields).default("[]").to_owned(),
            boolean(Providers::RefreshTokenRotates)
                .default(false)
                .to_owned(),
            boolean(Providers::OmitScopeOnRefresh)
                .default(true)
                .to_owned(),
            boolean(Providers::OmitCodeOnRefresh)
                .default(true)
                .to_owned(),
            boolean(Providers::UrlEncodeRefreshToken)
                .default(false)
                .to_owned(),
            boolean(Providers::SendClientIdInBody)
                .default(false)
                .to_owned(),
            string_null(Providers::PushedAuthorizationRequestEndpoint),
            string_null(Providers::DeviceAuthorizationEndpoint),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Providers::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            text_null(Tokens::ResponseFields),
            text_null(Tokens::AuthorizationCode),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tokens::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Tokens::ResponseFields, Tokens::AuthorizationCode] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tokens::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Providers::Template,
            Providers::DefaultScope,
            Providers::TokenResponsePath,
            Providers::KeepResponseFields,
            Providers::RefreshTokenRotates,
            Providers::OmitScopeOnRefresh,
            Providers::OmitCodeOnRefresh,
            Providers::UrlEncodeRefreshToken,
            Providers::SendClientIdInBody,
            Providers::PushedAuthorizationRequestEndpoint,
            Providers::DeviceAuthorizationEndpoint,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Providers::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
