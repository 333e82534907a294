//! Storage on both databases: migrations, the master key check and sealed
//! columns, run once on a SQLite file and once on a PostgreSQL schema.

use chrono::Utc;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait};
use server::db::DatabaseUrl;
use server::db::{self, entity::instance_setting};
use server::key_check::{self, KeyCheckError};
use server::master_key::MasterKey;
use server::seal::{SealError, SealSlot, Sealer};

async fn migrations_are_idempotent(db: &DatabaseConnection) {
    db::migrate(db).await.unwrap();
    let first = db::applied_migrations(db).await.unwrap();
    db::migrate(db).await.unwrap();
    assert_eq!(first, db::applied_migrations(db).await.unwrap());
    assert_eq!(
        first,
        vec![
            "m0001_instance_settings".to_owned(),
            "m0002_accounts".to_owned(),
            "m0003_providers_tokens".to_owned(),
            "m0004_token_leases".to_owned(),
            "m0005_background_refresh".to_owned(),
            "m0006_jobs".to_owned(),
            "m0007_provider_certificates".to_owned(),
            "m0008_provider_quirks".to_owned(),
            "m0009_refresh_token_lifetimes".to_owned(),
            "m0010_connection_tests".to_owned(),
            "m0011_token_usage".to_owned(),
            "m0012_client_secret_rotation".to_owned(),
            "m0013_renewal_counts".to_owned(),
            "m0014_scopes_and_revocation".to_owned(),
        ]
    );
    // The newest migrations roll back and apply again.
    {
        use sea_orm_migration::MigratorTrait as _;
        server::db::migration::Migrator::down(db, Some(5))
            .await
            .unwrap();
        assert_eq!(
            db::applied_migrations(db).await.unwrap(),
            first[..first.len() - 5]
        );
        db::migrate(db).await.unwrap();
        assert_eq!(first, db::applied_migrations(db).await.unwrap());
    }
    db::ping(db).await.unwrap();
}

async fn master_key_is_recorded_then_enforced(db: &DatabaseConnection) {
    let key = MasterKey::generate();
    let sealer = Sealer::new(&key);
    key_check::verify(db, &sealer).await.unwrap();
    // A second start with the same key passes.
    key_check::verify(db, &Sealer::new(&key)).await.unwrap();
    // Another key is refused with a message that says so.
    let err = key_check::verify(db, &Sealer::new(&MasterKey::generate()))
        .await
        .unwrap_err();
    assert!(matches!(err, KeyCheckError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
    // A canary altered in the database is detected.
    let altered = sealer.seal(
        SealSlot::new("instance_settings", "elsewhere", "value"),
        b"x",
    );
    instance_setting::Entity::update(instance_setting::ActiveModel {
        name: Set("master_key_canary".into()),
        value: Set(altered),
        updated_at: Set(Utc::now()),
    })
    .exec(db)
    .await
    .unwrap();
    let err = key_check::verify(db, &sealer).await.unwrap_err();
    assert!(
        matches!(err, KeyCheckError::Canary(SealError::Authentication)),
        "{err}"
    );
}

async fn sealed_values_survive_storage_and_stay_bound_to_their_row(db: &DatabaseConnection) {
    let sealer = Sealer::new(&MasterKey::generate());
    let now = Utc::now();
    for row in ["secret-a", "secret-b"] {
        let sealed = sealer.seal(
            SealSlot::new("instance_settings", row, "value"),
            row.as_bytes(),
        );
        instance_setting::Entity::insert(instance_setting::ActiveModel {
            name: Set(row.into()),
            value: Set(sealed),
            updated_at: Set(now),
        })
        .exec(db)
        .await
        .unwrap();
    }
    let a = instance_setting::Entity::find_by_id("secret-a".to_owned())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert!(!a.value.contains("secret-a"));
    let opened = sealer
        .open(
            SealSlot::new("instance_settings", "secret-a", "value"),
            &a.value,
        )
        .unwrap();
    assert_eq!(opened.expose(), b"secret-a");
    // Copy row a's ciphertext into row b: it must not open there.
    db.execute_unprepared(&format!(
        "UPDATE instance_settings SET value = '{}' WHERE name = 'secret-b'",
        a.value
    ))
    .await
    .unwrap();
    let b = instance_setting::Entity::find_by_id("secret-b".to_owned())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        sealer
            .open(
                SealSlot::new("instance_settings", "secret-b", "value"),
                &b.value
            )
            .unwrap_err(),
        SealError::Authentication
    );
}

async fn key_rotation_reseals_everything_and_survives_an_interruption(db: &DatabaseConnection) {
    use server::rotation;
    let old = MasterKey::generate();
    let new = MasterKey::generate();
    let old_sealer = Sealer::new(&old);
    key_check::verify(db, &old_sealer).await.unwrap();
    let now = Utc::now();
    let names: Vec<String> = (0..450).map(|i| format!("rot-{i:04}")).collect();
    let new_only = Sealer::new(&new);
    for (i, name) in names.iter().enumerate() {
        let slot = SealSlot::new("instance_settings", name, "value");
        // An interrupted earlier run left the first 100 under the new key.
        let sealer = if i < 100 { &new_only } else { &old_sealer };
        instance_setting::Entity::insert(instance_setting::ActiveModel {
            name: Set(name.clone()),
            value: Set(sealer.seal(slot, name.as_bytes())),
            updated_at: Set(now),
        })
        .exec(db)
        .await
        .unwrap();
    }
    // A key that is neither the database's nor the new one is refused.
    let stranger = MasterKey::generate();
    assert!(rotation::rotate(db, &stranger, &new, |_| {}).await.is_err());

    let mut batches = 0;
    let report = rotation::rotate(db, &old, &new, |_| batches += 1)
        .await
        .unwrap();
    assert_eq!(report.already_done, 100);
    assert_eq!(report.resealed, 351, "350 values and the canary");
    assert!(batches >= 2, "worked in batches");
    for name in &names {
        let m = instance_setting::Entity::find_by_id(name.clone())
            .one(db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Sealer::key_id_of(&m.value).unwrap(), new.id());
        let opened = new_only
            .open(SealSlot::new("instance_settings", name, "value"), &m.value)
            .unwrap();
        assert_eq!(opened.expose(), name.as_bytes());
    }
    // The database now belongs to the new key only.
    key_check::verify(db, &new_only).await.unwrap();
    assert!(matches!(
        key_check::verify(db, &old_sealer).await.unwrap_err(),
        KeyCheckError::Mismatch { .. }
    ));
    // Running again is harmless.
    let again = rotation::rotate(db, &old, &new, |_| {}).await.unwrap();
    assert_eq!(again.resealed, 0);
    assert_eq!(again.already_done, 451);
}

async fn run_all(db: &DatabaseConnection) {
    migrations_are_idempotent(db).await;
    master_key_is_recorded_then_enforced(db).await;
    sealed_values_survive_storage_and_stay_bound_to_their_row(db).await;
}

#[tokio::test]
async fn storage_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::sqlite_file(&dir.path().join("nested/dir/quiver.db"));
    let db = db::connect(&url, None).await.unwrap();
    run_all(&db).await;
    // WAL is on, and writers wait instead of failing at once.
    let mode = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA journal_mode",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mode.try_get_by_index::<String>(0).unwrap(), "wal");
    let timeout = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "PRAGMA busy_timeout",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(timeout.try_get_by_index::<i64>(0).unwrap(), 10_000);
}

#[tokio::test]
async fn key_rotation_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::sqlite_file(&dir.path().join("quiver.db"));
    let db = db::connect(&url, None).await.unwrap();
    db::migrate(&db).await.unwrap();
    key_rotation_reseals_everything_and_survives_an_interruption(&db).await;
}

#[tokio::test]
async fn key_rotation_on_postgres() {
    let schema = crate::support::PgSchema::create().await;
    let db = db::connect(&schema.url, Some(&schema.name)).await.unwrap();
    db::migrate(&db).await.unwrap();
    key_rotation_reseals_everything_and_survives_an_interruption(&db).await;
    db.close().await.unwrap();
    schema.drop_schema().await;
}

#[tokio::test]
async fn storage_on_postgres() {
    let schema = crate::support::PgSchema::create().await;
    let db = db::connect(&schema.url, Some(&schema.name)).await.unwrap();
    run_all(&db).await;
    // The tables really are in the test's own schema.
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}' AND table_name = 'instance_settings'",
                schema.name
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 1);
    db.close().await.unwrap();
    schema.drop_schema().await;
}
