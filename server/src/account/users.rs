//! The `users` table: create, find, change role, disable, reset password.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, SqlErr,
};

use super::{AccountError, Role, normalize_email, password};
use crate::clock::SharedClock;
use crate::db::entity::user;
use crate::secret::SecretString;

/// An account as the rest of the server sees it (no password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// UUID.
    pub id: String,
    /// Lower-cased email.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<user::Model> for User {
    type Error = AccountError;

    fn try_from(m: user::Model) -> Result<Self, Self::Error> {
        Ok(Self {
            role: m.role.parse()?,
            id: m.id,
            email: m.email,
            disabled: m.disabled,
            created_at: m.created_at,
        })
    }
}

/// Access to the `users` table.
#[derive(Clone)]
pub struct Users {
    db: DatabaseConnection,
    clock: SharedClock,
}

impl Users {
    /// Wraps the database.
    pub fn new(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    /// How many accounts exist.
    pub async fn count(&self) -> Result<u64, AccountError> {
        Ok(user::Entity::find().count(&self.db).await?)
    }

    /// Creates an account.
    pub async fn create(
        &self,
        email: &str,
        password: &SecretString,
        role: Role,
    ) -> Result<User, AccountError> {
        let email = normalize_email(email)?;
        password::check_policy(password)?;
        let now = self.clock.now();
        let model = user::ActiveModel {
            id: Set(uuid::Uuid::new_v4().to_string()),
            email: Set(email),
            password_hash: Set(password::hash(password)),
            role: Set(role.as_str().to_owned()),
            disabled: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match model.insert(&self.db).await {
            Ok(m) => m.try_into(),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(AccountError::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The account with this email, with its password hash.
    pub async fn find_by_email_with_hash(
        &self,
        email: &str,
    ) -> Result<Option<(User, String)>, AccountError> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(&self.db)
            .await?;
        found
            .map(|m| {
                let hash = m.password_hash.clone();
                User::try_from(m).map(|u| (u, hash))
            })
            .transpose()
    }

    /// The account with this email.
    pub async fn find_by_email(&self, email: &str) -> Result<User, AccountError> {
        self.find_by_email_with_hash(email)
            .await?
            .map(|(u, _)| u)
            .ok_or(AccountError::NotFound)
    }

    /// The account with this id.
    pub async fn get(&self, id: &str) -> Result<User, AccountError> {
        user::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or(AccountError::NotFound)?
            .try_into()
    }

    /// Every account, by email.
    pub async fn list(&self) -> Result<Vec<User>, AccountError> {
        user::Entity::find()
            .order_by_asc(user::Column::Email)
            .all(&self.db)
            .await?
            .into_iter()
            .map(User::try_from)
            .collect()
    }

    async fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut user::ActiveModel),
    ) -> Result<User, AccountError> {
        let model = user::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
            .ok_or(AccountError::NotFound)?;
        let mut active: user::ActiveModel = model.into();
        change(&mut active);
        active.updated_at = Set(self.clock.now());
        active.update(&self.db).await?.try_into()
    }

    /// Replaces the password (the caller revokes the sessions).
    pub async fn set_password(
        &self,
        id: &str,
        password: &SecretString,
    ) -> Result<User, AccountError> {
        password::check_policy(password)?;
        let hash = password::hash(password);
        self.update(id, |m| m.password_hash = Set(hash)).await
    }

    /// Enables or disables the account.
    pub async fn set_disabled(&self, id: &str, disabled: bool) -> Result<User, AccountError> {
        self.update(id, |m| m.disabled = Set(disabled)).await
    }

    /// Changes the role.
    pub async fn set_role(&self, id: &str, role: Role) -> Result<User, AccountError> {
        self.update(id, |m| m.role = Set(role.as_str().to_owned()))
            .await
    }
}
