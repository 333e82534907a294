//! How a provider departs from the standard, as settings an admin can see
//! and change: where the token fields sit in its answer, which extra
//! answer fields to keep, how it wants refreshes sent, whether it rotates
//! refresh tokens, and the scope a new token starts with; its pushed
//! authorization request (RFC 9126) and device authorization (RFC 8628)
//! endpoints. Tokens keep the extra answer fields, the authorization code
//! when the provider wants it again at refresh, and a device authorization
//! in progress (the device code sealed, what the person types and where,
//! and when Quiver polls next). An index finds the device polls that are
//! due.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    boolean, integer_null, string_null, text, text_null, timestamp_with_time_zone_null,
};

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
    DeviceCode,
    UserCode,
    VerificationUri,
    VerificationUriComplete,
    DeviceExpiresAt,
    DeviceIntervalSecs,
    DeviceNextPollAt,
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
            text_null(Tokens::DeviceCode),
            string_null(Tokens::UserCode),
            text_null(Tokens::VerificationUri),
            text_null(Tokens::VerificationUriComplete),
            timestamp_with_time_zone_null(Tokens::DeviceExpiresAt),
            integer_null(Tokens::DeviceIntervalSecs),
            timestamp_with_time_zone_null(Tokens::DeviceNextPollAt),
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
        manager
            .create_index(
                Index::create()
                    .name("idx_tokens_device_next_poll_at")
                    .table(Tokens::Table)
                    .col(Tokens::DeviceNextPollAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tokens_device_next_poll_at")
                    .table(Tokens::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Tokens::ResponseFields,
            Tokens::AuthorizationCode,
            Tokens::DeviceCode,
            Tokens::UserCode,
            Tokens::VerificationUri,
            Tokens::VerificationUriComplete,
            Tokens::DeviceExpiresAt,
            Tokens::DeviceIntervalSecs,
            Tokens::DeviceNextPollAt,
        ] {
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
