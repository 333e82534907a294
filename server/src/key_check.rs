//! Start-up check that the configured master key is the one the database
//! was sealed with, so Quiver never writes secrets under a second key by
//! mistake nor tries to open them with the wrong one.

use chrono::Utc;
use rand::RngCore;
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr, EntityTrait};

use crate::db::entity::instance_setting;
use crate::master_key::KeyId;
use crate::seal::{SealSlot, Sealer};

const KEY_ID: &str = "master_key_id";
const CANARY: &str = "master_key_canary";

/// Why the master key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// The database was sealed under another key.
    #[error(
        "the master key (id {given}) does not match the key this database was sealed with \
         (id {stored}); start Quiver with the original key (QUIVER_MASTER_KEY or \
         QUIVER_MASTER_KEY_FILE). Nothing was changed"
    )]
    Mismatch {
        /// The id recorded in the database.
        stored: String,
        /// The id of the key given now.
        given: KeyId,
    },
    /// The id matches but the canary does not open: the stored values were
    /// altered.
    #[error(
        "the master key's check value in the database does not open ({0}); the database may have been altered"
    )]
    Canary(crate::seal::SealError),
    /// The database could not be read or written.
    #[error("cannot read the master key record: {0}")]
    Db(#[from] DbErr),
}

/// Records the key on first start; afterwards refuses any other key.
pub async fn verify(db: &DatabaseConnection, sealer: &Sealer) -> Result<(), KeyCheckError> {
    let given = sealer.current_key_id();
    let canary_slot = SealSlot::new("instance_settings", CANARY, "value");
    if instance_setting::Entity::find_by_id(KEY_ID.to_owned())
        .one(db)
        .await?
        .is_none()
    {
        let mut canary = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut canary);
        let now = Utc::now();
        let rows = [
            (KEY_ID, given.to_hex()),
            (CANARY, sealer.seal(canary_slot, &canary)),
        ]
        .map(|(name, value)| instance_setting::ActiveModel {
            name: Set(name.to_owned()),
            value: Set(value),
            updated_at: Set(now),
        });
        // Two replicas starting at once: the first insert wins, the other
        // then verifies against it like any later start.
        instance_setting::Entity::insert_many(rows)
            .on_conflict_do_nothing_on([instance_setting::Column::Name])
            .exec(db)
            .await?;
    }
    let stored = stored_key_id(db).await?.unwrap_or_default();
    if stored != given.to_hex() {
        return Err(KeyCheckError::Mismatch { stored, given });
    }
    open_canary(db, sealer).await
}

/// The key id the database records, if any.
pub async fn stored_key_id(db: &DatabaseConnection) -> Result<Option<String>, DbErr> {
    Ok(instance_setting::Entity::find_by_id(KEY_ID.to_owned())
        .one(db)
        .await?
        .map(|m| m.value))
}

/// Opens the canary with `sealer` (which may hold several keys).
pub async fn open_canary(db: &DatabaseConnection, sealer: &Sealer) -> Result<(), KeyCheckError> {
    let canary = instance_setting::Entity::find_by_id(CANARY.to_owned())
        .one(db)
        .await?
        .map(|m| m.value)
        .unwrap_or_default();
    sealer
        .open(SealSlot::new("instance_settings", CANARY, "value"), &canary)
        .map(|_| ())
        .map_err(KeyCheckError::Canary)
}

/// Records `key` as the database's key (the last step of a rotation).
pub async fn adopt(
    db: &DatabaseConnection,
    key: &crate::master_key::MasterKey,
) -> Result<(), DbErr> {
    use sea_orm::ActiveModelTrait;
    instance_setting::ActiveModel {
        name: Set(KEY_ID.to_owned()),
        value: Set(key.id().to_hex()),
        updated_at: Set(Utc::now()),
    }
    .update(db)
    .await
    .map(|_| ())
}
