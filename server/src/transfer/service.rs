//! The transfer service: who may export and import, and the audit entry
//! each export and import leaves. The work itself is in [`super::export`]
//! and [`super::import`].

use std::sync::Arc;

use app::error::AppError;
use sea_orm::DatabaseConnection;

use crate::account::Role;
use crate::account::users::{User, Users};
use crate::audit::{Actor, Audit, AuditEvent, Outcome};
use crate::auth::Caller;
use crate::clock::SharedClock;
use crate::seal::Sealer;

/// Export and import of providers and tokens (admins and the CLI only).
#[derive(Clone)]
pub struct Transfer {
    pub(crate) db: DatabaseConnection,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) clock: SharedClock,
    pub(crate) settings: TransferSettings,
    pub(crate) audit: Audit,
    users: Users,
}

/// The settings export and import work with.
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// The instance's public URL, without a trailing slash: written into
    /// every bundle so that an import can tell where it came from.
    pub public_url: String,
    /// Largest bundle read, in bytes (`QUIVER_IMPORT_MAX_BYTES`).
    pub import_max_bytes: usize,
    /// Imported provider URLs on loopback hosts may use plain http.
    pub allow_insecure_loopback: bool,
    /// How often a token that holds a refresh token but reports no expiry
    /// is renewed: sets an imported token's next renewal.
    pub idle_refresh_interval: chrono::Duration,
}

/// Proof that the access check passed: only [`Transfer::authorize`] (an
/// admin) and [`Transfer::authorize_cli`] make one, and every export and
/// import needs one.
#[derive(Debug, Clone)]
pub struct Authorized {
    pub(crate) actor: Actor,
    pub(crate) addr: Option<String>,
    /// Owns imported tokens whose `owner_email` names no account here.
    pub(crate) fallback_owner: User,
}

impl Authorized {
    /// The account that receives tokens of unknown owners.
    pub fn fallback_owner(&self) -> &User {
        &self.fallback_owner
    }
}

impl Transfer {
    /// Builds the service from its parts.
    pub fn new(
        db: DatabaseConnection,
        sealer: Arc<Sealer>,
        clock: SharedClock,
        settings: TransferSettings,
        audit: Audit,
        users: Users,
    ) -> Self {
        Self {
            db,
            sealer,
            clock,
            settings,
            audit,
            users,
        }
    }

    /// Admins only; a refusal is audited as denied.
    pub async fn authorize(
        &self,
        caller: &Caller,
        addr: Option<String>,
        action: &'static str,
    ) -> Result<Authorized, AppError> {
        if caller.is_admin() {
            return Ok(Authorized {
                actor: caller.actor(),
                addr,
                fallback_owner: User::clone(&caller.user),
            });
        }
        let _ = self
            .audit
            .record(
                AuditEvent::new(caller.actor(), action, "bundle", Outcome::Denied).from_addr(addr),
            )
            .await;
        Err(AppError::Forbidden)
    }

    /// The command line (whoever can run it holds the database and the
    /// key). Tokens of unknown owners go to the oldest enabled admin.
    pub async fn authorize_cli(&self) -> Result<Authorized, String> {
        let users = self.users.list().await.map_err(|e| e.to_string())?;
        let owner = users
            .into_iter()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .min_by_key(|u| u.created_at)
            .ok_or_else(|| {
                "no admin account exists: create one first with `quiver user create --email E --admin` \
                 (imported tokens of unknown owners are given to the oldest admin)"
                    .to_owned()
            })?;
        Ok(Authorized {
            actor: Actor::System("cli".into()),
            addr: None,
            fallback_owner: owner,
        })
    }

    /// Appends the one audit entry of an export or import (counts only,
    /// never a secret).
    pub(crate) async fn record(
        &self,
        who: &Authorized,
        action: &'static str,
        outcome: Outcome,
        detail: String,
    ) {
        let _ = self
            .audit
            .record(
                AuditEvent::new(who.actor.clone(), action, "bundle", outcome)
                    .from_addr(who.addr.clone())
                    .detail(detail),
            )
            .await;
    }

    /// Every account by lower-cased email, for matching token owners.
    pub(crate) async fn users_by_email(
        &self,
    ) -> Result<std::collections::HashMap<String, User>, sea_orm::DbErr> {
        let users = self.users.list().await.map_err(|e| match e {
            crate::account::AccountError::Db(db) => db,
            other => sea_orm::DbErr::Custom(other.to_string()),
        })?;
        Ok(users.into_iter().map(|u| (u.email.clone(), u)).collect())
    }
}
