//! sea-orm entities, one module per table.

pub mod api_key;
pub mod audit_entry;
pub mod auth_request;
pub mod event;
pub mod instance_setting;
pub mod job;
pub mod job_run;
pub mod provider;
pub mod renewal_count;
pub mod session;
pub mod token;
pub mod token_use;
pub mod user;

#[cfg(test)]
mod tests {
    use app::jobs::{JobAction, JobTarget};
    use chrono::Utc;
    use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Statement};

    use super::job;

    fn job_row(action: JobAction, target: JobTarget) -> job::Model {
        let now = Utc::now();
        job::Model {
            id: format!("{action}-{target}"),
            name: format!("{action} {target}"),
            action,
            target,
            target_id: None,
            every_minutes: Some(60),
            cron: None,
            paused: false,
            next_run_at: None,
            last_run_at: None,
            created_by: "admin".into(),
            created_at: now,
            updated_at: now,
            lease_owner: None,
            lease_until: None,
        }
    }

    /// The enums go into text columns as their wire names, come back as
    /// the same variant, and a name Quiver does not know fails the read
    /// with a message naming the column's field and the name.
    #[tokio::test]
    async fn enum_columns_hold_wire_names_and_refuse_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("e.db").display());
        let db = sea_orm::Database::connect(url).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        for action in [JobAction::Refresh, JobAction::ResetClientCredentials] {
            for target in [
                JobTarget::Token,
                JobTarget::Provider,
                JobTarget::ClientCredentials,
            ] {
                let row = job_row(action, target);
                row.clone().into_active_model().insert(&db).await.unwrap();
                let read = job::Entity::find_by_id(row.id.clone())
                    .one(&db)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!((read.action, read.target), (action, target));
                let stored = db
                    .query_one_raw(Statement::from_string(
                        db.get_database_backend(),
                        format!("SELECT action, target FROM jobs WHERE id = '{}'", row.id),
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                let text: (String, String) = (
                    stored.try_get("", "action").unwrap(),
                    stored.try_get("", "target").unwrap(),
                );
                assert_eq!(text, (action.to_string(), target.to_string()));
            }
        }
        db.execute_unprepared("UPDATE jobs SET action = 'rotate' WHERE id = 'refresh-token'")
            .await
            .unwrap();
        let e = job::Entity::find_by_id("refresh-token".to_owned())
            .one(&db)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(r#"action must be refresh or reset_client_credentials, not "rotate""#),
            "{e}"
        );
    }
}
