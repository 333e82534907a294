//! OAuth providers, tokens, and the pending authorization requests of the
//! interactive flows.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer_null, boolean, integer, string, string_null, string_uniq, text, text_null,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Providers {
    Table,
    Id,
    Name,
    Issuer,
    AuthorizationEndpoint,
    TokenEndpoint,
    RefreshEndpoint,
    RevocationEndpoint,
    JwksUri,
    ClientId,
    ClientSecret,
    ClientAuthMethod,
    PrivateKey,
    KeyId,
    SigningAlg,
    AssertionAudience,
    Pkce,
    ScopeSeparator,
    DefaultLifetimeSecs,
    ExpiresInMillis,
    AuthorizeParams,
    TokenParams,
    ConnectTimeoutMs,
    TimeoutMs,
    IssParameterSupported,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    Name,
    OwnerId,
    ProviderId,
    Flow,
    UseDefaultKeys,
    ClientId,
    ClientSecret,
    Username,
    Password,
    Resource,
    Scope,
    AdditionalValues,
    Status,
    AccessToken,
    RefreshToken,
    TokenType,
    ExpiresAt,
    GrantedScope,
    Identity,
    LastError,
    LastRefreshedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuthRequests {
    Table,
    StateHash,
    TokenId,
    ProviderId,
    SessionHash,
    PkceVerifier,
    Nonce,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Providers::Table)
                    .col(string(Providers::Id).primary_key())
                    .col(string_uniq(Providers::Name))
                    .col(string_null(Providers::Issuer))
                    .col(string_null(Providers::AuthorizationEndpoint))
                    .col(string(Providers::TokenEndpoint))
                    .col(string_null(Providers::RefreshEndpoint))
                    .col(string_null(Providers::RevocationEndpoint))
                    .col(string_null(Providers::JwksUri))
                    .col(string_null(Providers::ClientId))
                    .col(text_null(Providers::ClientSecret))
                    .col(string(Providers::ClientAuthMethod))
                    .col(text_null(Providers::PrivateKey))
                    .col(string_null(Providers::KeyId))
                    .col(string_null(Providers::SigningAlg))
                    .col(string_null(Providers::AssertionAudience))
                    .col(boolean(Providers::Pkce))
                    .col(string(Providers::ScopeSeparator))
                    .col(big_integer_null(Providers::DefaultLifetimeSecs))
                    .col(boolean(Providers::ExpiresInMillis))
                    .col(text(Providers::AuthorizeParams))
                    .col(text(Providers::TokenParams))
                    .col(integer(Providers::ConnectTimeoutMs))
                    .col(integer(Providers::TimeoutMs))
                    .col(boolean(Providers::IssParameterSupported))
                    .col(timestamp_with_time_zone(Providers::CreatedAt))
                    .col(timestamp_with_time_zone(Providers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .col(string(Tokens::Id).primary_key())
                    .col(string(Tokens::Name))
                    .col(string(Tokens::OwnerId))
                    .col(string(Tokens::ProviderId))
                    .col(string(Tokens::Flow))
                    .col(boolean(Tokens::UseDefaultKeys))
                    .col(string_null(Tokens::ClientId))
                    .col(text_null(Tokens::ClientSecret))
                    .col(string_null(Tokens::Username))
                    .col(text_null(Tokens::Password))
                    .col(string_null(Tokens::Resource))
                    .col(text_null(Tokens::Scope))
                    .col(text(Tokens::AdditionalValues))
                    .col(string(Tokens::Status))
                    .col(text_null(Tokens::AccessToken))
                    .col(text_null(Tokens::RefreshToken))
                    .col(string_null(Tokens::TokenType))
                    .col(timestamp_with_time_zone_null(Tokens::ExpiresAt))
                    .col(text_null(Tokens::GrantedScope))
                    .col(text_null(Tokens::Identity))
                    .col(text_null(Tokens::LastError))
                    .col(timestamp_with_time_zone_null(Tokens::LastRefreshedAt))
                    .col(timestamp_with_time_zone(Tokens::CreatedAt))
                    .col(timestamp_with_time_zone(Tokens::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tokens::Table, Tokens::ProviderId)
                            .to(Providers::Table, Providers::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tokens::Table, Tokens::OwnerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_tokens_owner", Tokens::OwnerId),
            ("idx_tokens_provider", Tokens::ProviderId),
            ("idx_tokens_name", Tokens::Name),
            ("idx_tokens_status", Tokens::Status),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Tokens::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuthRequests::Table)
                    .col(string(AuthRequests::StateHash).primary_key())
                    .col(string(AuthRequests::TokenId))
                    .col(string(AuthRequests::ProviderId))
                    .col(string_null(AuthRequests::SessionHash))
                    .col(text(AuthRequests::PkceVerifier))
                    .col(string_null(AuthRequests::Nonce))
                    .col(timestamp_with_time_zone(AuthRequests::CreatedAt))
                    .col(timestamp_with_time_zone(AuthRequests::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuthRequests::Table, AuthRequests::TokenId)
                            .to(Tokens::Table, Tokens::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AuthRequests::Table.into_iden(),
            Tokens::Table.into_iden(),
            Providers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
