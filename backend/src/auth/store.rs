//! Users and their roles in the database.

use sqlx::AnyPool;
use talos_dr_shared::{Role, UserSummary};

use super::AuthError;
use crate::clock::now_ms;

/// A user as the login check needs them.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub username: String,
    pub password_hash: String,
    pub roles: Vec<Role>,
}

#[derive(Debug, Clone)]
pub struct UserStore {
    pool: AnyPool,
}

/// Names: 1-64 characters of letters, digits, `.`, `_`, `-`, starting with a letter or digit.
pub fn check_username(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadUsername(name.to_string()))
    }
}

impl UserStore {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Adds a user with an already hashed password. One transaction: a user never exists without
    /// their roles.
    pub async fn create(
        &self,
        username: &str,
        password_hash: &str,
        roles: &[Role],
    ) -> Result<(), AuthError> {
        check_username(username)?;
        if roles.is_empty() {
            return Err(AuthError::NoRoles);
        }
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (username, password_hash, created_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(password_hash)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(AuthError::UserExists(username.to_string()));
        }
        for role in roles {
            sqlx::query(
                "INSERT INTO user_roles (username, role) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(username)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn find(&self, username: &str) -> Result<Option<StoredUser>, AuthError> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT username, password_hash FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        let Some((username, password_hash)) = row else {
            return Ok(None);
        };
        let roles = self.roles(&username).await?;
        Ok(Some(StoredUser {
            username,
            password_hash,
            roles,
        }))
    }

    /// The user's roles now; empty when the user no longer exists.
    pub async fn roles(&self, username: &str) -> Result<Vec<Role>, AuthError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT role FROM user_roles WHERE username = $1 ORDER BY role")
                .bind(username)
                .fetch_all(&self.pool)
                .await?;
        let mut roles: Vec<Role> = rows.iter().filter_map(|(r,)| Role::parse(r)).collect();
        roles.sort();
        Ok(roles)
    }

    pub async fn count(&self) -> Result<i64, AuthError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    pub async fn list(&self) -> Result<Vec<UserSummary>, AuthError> {
        let users: Vec<(String, i64)> =
            sqlx::query_as("SELECT username, created_at_ms FROM users ORDER BY username")
                .fetch_all(&self.pool)
                .await?;
        let mut out = Vec::with_capacity(users.len());
        for (username, created_at_ms) in users {
            let roles = self.roles(&username).await?;
            out.push(UserSummary {
                username,
                roles,
                created_at_ms,
            });
        }
        Ok(out)
    }
}
