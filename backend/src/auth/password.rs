//! Password hashing with argon2id. Hashing is slow on purpose, so it runs on the blocking pool
//! and never stalls the request executor.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::Rng;
use rand::distributions::Alphanumeric;

use super::AuthError;

/// Shortest password the console accepts.
pub const MIN_PASSWORD_LEN: usize = 12;
const GENERATED_LEN: usize = 24;

/// A hash of a password nobody knows. Verified when the username is unknown, so a failed login
/// takes as long whether or not the user exists.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(generate_password().as_bytes())
        .ok()
        .map(|h| h.to_string())
});

/// A random password for a new user: 24 letters and digits (about 140 bits).
pub fn generate_password() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(GENERATED_LEN)
        .map(char::from)
        .collect()
}

pub fn check_strength(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::WeakPassword(MIN_PASSWORD_LEN));
    }
    Ok(())
}

/// The argon2id PHC string for `password`, with a fresh random salt.
pub async fn hash_password(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AuthError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| AuthError::Hashing(e.to_string()))?
}

/// Whether `password` matches `hash`; with no hash (unknown user) a dummy hash is checked and the
/// answer is always no.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, AuthError> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let Some(hash) = hash.or_else(|| DUMMY_HASH.clone()) else {
            return Err(AuthError::Hashing("cannot build the dummy hash".into()));
        };
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(|e| AuthError::Hashing(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery".into())
            .await
            .expect("hashes");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            verify_password("correct horse battery".into(), Some(hash.clone()))
                .await
                .expect("verifies")
        );
        assert!(
            !verify_password("wrong horse battery".into(), Some(hash))
                .await
                .expect("verifies")
        );
        assert!(
            !verify_password("anything".into(), None)
                .await
                .expect("verifies")
        );
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        assert_eq!(a.len(), GENERATED_LEN);
        assert!(check_strength(&a).is_ok());
        assert_ne!(a, generate_password());
        assert!(check_strength("short").is_err());
    }
}
