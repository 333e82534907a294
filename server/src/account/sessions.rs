//! Server-side sessions. The cookie carries a random id; the database keeps
//! only its SHA-256, so a copy of the database opens no session.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use sha2::{Digest, Sha256};

use super::AccountError;
use super::users::User;
use crate::clock::SharedClock;
use crate::db::entity::{session, user};
use crate::secret::SecretString;

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after login, used or not.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::hours(12),
            absolute: Duration::days(7),
        }
    }
}

/// `last_seen_at` is written at most this often, to keep reads cheap.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The hash that identifies the session in the database.
    pub id_hash: String,
    /// The user.
    pub user: User,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
}

/// The `sessions` table.
#[derive(Clone)]
pub struct Sessions {
    db: DatabaseConnection,
    clock: SharedClock,
    policy: SessionPolicy,
}

/// The SHA-256 of a session id or API key, hex.
pub fn hash_token(token: &str) -> String {
    hex_digest(&token_digest(token))
}

/// The SHA-256 of a session id or API key.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A digest as lower-case hex, as the database keeps it.
pub fn hex_digest(digest: &[u8; 32]) -> String {
    let mut hex = [0u8; 64];
    // The buffer is exactly twice the digest: this cannot fail.
    let _ = hex::encode_to_slice(digest, &mut hex);
    String::from_utf8_lossy(&hex).into_owned()
}

impl Sessions {
    /// Wraps the database.
    pub fn new(db: DatabaseConnection, clock: SharedClock, policy: SessionPolicy) -> Self {
        Self { db, clock, policy }
    }

    /// The policy in force.
    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// Starts a session for `user_id`; returns the id for the cookie.
    pub async fn start(
        &self,
        user_id: &str,
        client_addr: Option<String>,
    ) -> Result<SecretString, AccountError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = SecretString::new(hex::encode(bytes));
        let now = self.clock.now();
        session::ActiveModel {
            id_hash: Set(hash_token(token.expose())),
            user_id: Set(user_id.to_owned()),
            created_at: Set(now),
            last_seen_at: Set(now),
            expires_at: Set(now + self.policy.absolute),
            client_addr: Set(client_addr),
        }
        .insert(&self.db)
        .await?;
        Ok(token)
    }

    /// The live session for a cookie value, if any; refreshes its idle
    /// timer. Expired sessions and those of disabled users are deleted.
    pub async fn resolve(&self, token: &str) -> Result<Option<LiveSession>, AccountError> {
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let id_hash = hash_token(token);
        let Some(found) = session::Entity::find_by_id(id_hash.clone())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let owner = user::Entity::find_by_id(found.user_id.clone())
            .one(&self.db)
            .await?;
        let now = self.clock.now();
        let owner = owner.map(User::try_from).transpose()?;
        let expired = now >= found.expires_at || now - found.last_seen_at >= self.policy.idle;
        match owner {
            Some(user) if !expired && !user.disabled => {
                if now - found.last_seen_at >= TOUCH_EVERY {
                    let mut active: session::ActiveModel = found.clone().into();
                    active.last_seen_at = Set(now);
                    active.update(&self.db).await?;
                }
                Ok(Some(LiveSession {
                    id_hash,
                    user,
                    expires_at: found.expires_at,
                }))
            }
            _ => {
                session::Entity::delete_by_id(id_hash)
                    .exec(&self.db)
                    .await?;
                Ok(None)
            }
        }
    }

    /// Ends one session.
    pub async fn end(&self, id_hash: &str) -> Result<bool, AccountError> {
        Ok(session::Entity::delete_by_id(id_hash.to_owned())
            .exec(&self.db)
            .await?
            .rows_affected
            > 0)
    }

    /// Ends every session of a user; returns how many.
    pub async fn end_all_for(&self, user_id: &str) -> Result<u64, AccountError> {
        Ok(session::Entity::delete_many()
            .filter(session::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_as_its_sha256_in_lower_case_hex() {
        // FIPS 180-2's example digest of "abc".
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash_token("abc"), abc);
        assert_eq!(hex_digest(&token_digest("abc")), abc);
        assert_eq!(hash_token("qvk_x").len(), 64);
    }
}
