//! API keys for automation: shown once at creation, stored only as a
//! SHA-256 hash, acting with their user's role, revocable at once.

use std::collections::HashMap;
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
use super::sessions::hash_token;
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

/// The `api_keys` table.
#[derive(Clone)]
pub struct ApiKeys {
    db: DatabaseConnection,
    clock: SharedClock,
    /// Keys verified moments ago, by hash, with their users.
    verified: Arc<Cache<(ApiKey, User)>>,
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
    ) -> Result<Option<(ApiKey, User)>, AccountError> {
        if !presented.starts_with(KEY_PREFIX) || presented.len() > 200 {
            return Ok(None);
        }
        let hash = hash_token(presented);
        let now = self.clock.now();
        // Verified moments ago, with no change since: no database read.
        if let Some((key, owner)) = self.verified.get(&hash) {
            self.note_use(&key, now);
            return Ok(Some((key, owner)));
        }
        let epoch = self.verified.epoch();
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
        let owner = User::try_from(owner)?;
        if owner.disabled {
            return Ok(None);
        }
        let key = ApiKey::from(found);
        self.note_use(&key, now);
        self.verified
            .put(&hash, (key.clone(), owner.clone()), epoch);
        Ok(Some((key, owner)))
    }

    /// Notes a use of `key` at `now` when its stored last use is older
    /// than [`TOUCH_EVERY`]; [`ApiKeys::write_uses`] writes it later.
    fn note_use(&self, key: &ApiKey, now: DateTime<Utc>) {
        if key.last_used_at.is_some_and(|t| now - t < TOUCH_EVERY) {
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
