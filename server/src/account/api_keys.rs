//! API keys for automation: shown once at creation, stored only as a
//! SHA-256 hash, acting with their user's role, revocable at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::distributions::Alphanumeric;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait,
    JoinType, QueryFilter, QueryOrder, QuerySelect,
};

use super::AccountError;
use super::sessions::{hash_token, hex_digest, token_digest};
use super::users::User;
use crate::cache::{Cache, Changes};
use crate::clock::SharedClock;
use crate::db::entity::{api_key, user};
use crate::secret::SecretString;

/// Every key starts with this, so that scanners and people recognise it.
pub const KEY_PREFIX: &str = "qvk_";
/// Characters of the key shown in lists.
const SHOWN_PREFIX_LEN: usize = 12;
/// `last_used_at` is written at most this often.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(60);
/// How often noted uses are written, as a `std` duration for timers.
pub const NOTE_USES_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// An API key's record (never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// UUID.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// First characters of the key.
    pub prefix: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKey {
    fn from(m: api_key::Model) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            name: m.name,
            prefix: m.prefix,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// When a use of one key was last noted, in seconds since the epoch:
/// shared by the requests that found the key in the cache.
#[derive(Debug)]
struct LastNoted(AtomicI64);

impl LastNoted {
    fn new(stored: Option<DateTime<Utc>>) -> Self {
        Self(AtomicI64::new(stored.map_or(i64::MIN, |t| t.timestamp())))
    }

    /// True for the one caller that should note a use at `now`: the last
    /// noted use is [`TOUCH_EVERY`] or more ago, and no other request
    /// claimed `now` first.
    fn claim(&self, now: DateTime<Utc>) -> bool {
        let now = now.timestamp();
        let last = self.0.load(Ordering::Relaxed);
        if now.saturating_sub(last) < TOUCH_EVERY.num_seconds() {
            return false;
        }
        self.0
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

/// A verified key, its enabled user, and when a use was last noted.
type VerifiedKey = (Arc<ApiKey>, Arc<User>, Arc<LastNoted>);

/// The `api_keys` table.
#[derive(Clone)]
pub struct ApiKeys {
    db: DatabaseConnection,
    clock: SharedClock,
    /// Keys verified moments ago, by the SHA-256 of the key, with their
    /// users and when a use of theirs was last noted. A hit hands out
    /// shared records: nothing is copied per request.
    verified: Arc<Cache<VerifiedKey, [u8; 32]>>,
    /// Uses not written yet: key id → latest use. A program's requests
    /// never wait for a write; [`ApiKeys::write_uses`] stores them.
    uses: Arc<Mutex<HashMap<String, DateTime<Utc>>>>,
}

impl ApiKeys {
    /// Wraps the database; verified keys are reused until `changes` moves.
    pub fn new(db: DatabaseConnection, clock: SharedClock, changes: Arc<Changes>) -> Self {
        Self {
            db,
            clock,
            verified: Arc::new(Cache::new(changes)),
            uses: Arc::default(),
        }
    }

    /// Creates a key for `user_id`; the key itself is returned only here.
    pub async fn create(
        &self,
        user_id: &str,
        name: &str,
    ) -> Result<(ApiKey, SecretString), AccountError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AccountError::Invalid {
                field: "name",
                message: "must be 1 to 100 characters".into(),
            });
        }
        let secret: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(40)
            .map(char::from)
            .collect();
        let key = SecretString::new(format!("{KEY_PREFIX}{secret}"));
        let model = api_key::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            user_id: Set(user_id.to_owned()),
            name: Set(name.to_owned()),
            prefix: Set(key.expose()[..SHOWN_PREFIX_LEN].to_owned()),
            key_hash: Set(hash_token(key.expose())),
            created_at: Set(self.clock.now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
        }
        .insert(&self.db)
        .await?;
        Ok((model.into(), key))
    }

    /// The live key and its enabled user for a presented key.
    pub async fn authenticate(
        &self,
        presented: &str,
    ) -> Result<Option<(Arc<ApiKey>, Arc<User>)>, AccountError> {
        if !presented.starts_with(KEY_PREFIX) || presented.len() > 200 {
            return Ok(None);
        }
        let digest = token_digest(presented);
        let now = self.clock.now();
        // Verified moments ago, with no change since: no database read.
        if let Some((key, owner, noted)) = self.verified.get(&digest) {
            self.note_use(&key, &noted, now);
            return Ok(Some((key, owner)));
        }
        let epoch = self.verified.epoch();
        let hash = hex_digest(&digest);
        // The key and its user in one round trip: this runs on every
        // request a program makes.
        let Some((found, Some(owner))) = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(&hash))
            .join(
                JoinType::InnerJoin,
                api_key::Entity::belongs_to(user::Entity)
                    .from(api_key::Column::UserId)
                    .to(user::Column::Id)
                    .into(),
            )
            .select_also(user::Entity)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if found.revoked_at.is_some() {
            return Ok(None);
        }
        let owner = Arc::new(User::try_from(owner)?);
        if owner.disabled {
            return Ok(None);
        }
        let key = Arc::new(ApiKey::from(found));
        // A use noted but not written yet counts too: reading the key
        // again does not note it again.
        let pending = self.pending_use(&key.id);
        let noted = Arc::new(LastNoted::new(key.last_used_at.max(pending)));
        self.note_use(&key, &noted, now);
        self.verified
            .put(&digest, (key.clone(), owner.clone(), noted), epoch);
        Ok(Some((key, owner)))
    }

    /// Notes a use of `key` at `now` when its last noted use is older
    /// than [`TOUCH_EVERY`]; [`ApiKeys::write_uses`] writes it later. The
    /// check is one atomic read: a program's requests take the lock once
    /// a minute per key (and once when the key is read from the database
    /// again), not on every request.
    fn note_use(&self, key: &ApiKey, noted: &LastNoted, now: DateTime<Utc>) {
        if !noted.claim(now) {
            return;
        }
        let mut uses = self.uses.lock().unwrap_or_else(|e| e.into_inner());
        match uses.get_mut(&key.id) {
            Some(at) => *at = now,
            None => {
                uses.insert(key.id.clone(), now);
            }
        }
    }

    /// The use of key `id` noted and not written yet.
    fn pending_use(&self, id: &str) -> Option<DateTime<Utc>> {
        self.uses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
    }

    /// Writes the uses noted since the last call: one `UPDATE` per key
    /// used, never moving a key's last use back. The server calls it every
    /// [`NOTE_USES_EVERY`] and when it stops; listing keys calls it first.
    pub async fn write_uses(&self) -> Result<(), AccountError> {
        let uses = std::mem::take(&mut *self.uses.lock().unwrap_or_else(|e| e.into_inner()));
        for (id, at) in uses {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
                .filter(api_key::Column::Id.eq(id))
                .filter(
                    Condition::any()
                        .add(api_key::Column::LastUsedAt.is_null())
                        .add(api_key::Column::LastUsedAt.lt(at)),
                )
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    /// Writes noted uses every [`NOTE_USES_EVERY`], until aborted.
    pub fn write_uses_regularly(&self) -> tokio::task::JoinHandle<()> {
        let keys = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(NOTE_USES_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                if let Err(e) = keys.write_uses().await {
                    tracing::warn!(error = %e, "could not store when API keys were last used");
                }
            }
        })
    }

    /// Keys of one user, or of everyone, newest first.
    pub async fn list(&self, user_id: Option<&str>) -> Result<Vec<ApiKey>, AccountError> {
        self.write_uses().await?;
        let mut query = api_key::Entity::find().order_by_desc(api_key::Column::CreatedAt);
        if let Some(user_id) = user_id {
            query = query.filter(api_key::Column::UserId.eq(user_id));
        }
        Ok(query
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// One key.
    pub async fn get(&self, id: &str) -> Result<ApiKey, AccountError> {
        api_key::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .map(Into::into)
            .ok_or(AccountError::NotFound)
    }

    /// Revokes a key; it stops working at once.
    pub async fn revoke(&self, id: &str) -> Result<ApiKey, AccountError> {
        let found = api_key::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or(AccountError::NotFound)?;
        if found.revoked_at.is_some() {
            return Ok(found.into());
        }
        let mut active: api_key::ActiveModel = found.into();
        active.revoked_at = Set(Some(self.clock.now()));
        Ok(active.update(&self.db).await?.into())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_key_used_every_second_notes_one_use_a_minute() {
        let noted = LastNoted::new(None);
        let claimed: Vec<i64> = (0..185).filter(|s| noted.claim(at(*s))).collect();
        assert_eq!(claimed, vec![0, 60, 120, 180]);
    }

    #[test]
    fn a_stored_recent_use_is_not_noted_again() {
        let noted = LastNoted::new(Some(at(0)));
        assert!(!noted.claim(at(59)));
        assert!(noted.claim(at(60)));
        assert!(!noted.claim(at(61)));
    }

    #[test]
    fn many_requests_at_the_same_moment_note_one_use() {
        let noted = Arc::new(LastNoted::new(Some(at(0))));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let noted = noted.clone();
                std::thread::spawn(move || (0..1000).filter(|_| noted.claim(at(100))).count())
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1);
    }
}
