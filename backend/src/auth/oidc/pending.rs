//! A sign-in between the redirect to the provider and the callback: state, nonce, PKCE verifier
//! and the page to return to.
//!
//! It travels in a short-lived cookie, sealed with AES-256-GCM under a key derived from the
//! client secret. A cookie rather than the session, because the session cookie is
//! SameSite=Strict and the browser does not send it on the provider's redirect back; a sealed
//! cookie rather than server memory, because the callback may reach another console replica.
//! The cookie also ties the callback to the browser that started the sign-in.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::now_ms;

pub const PENDING_COOKIE: &str = "talos_dr_oidc";
/// Only the OIDC routes need the cookie.
pub const PENDING_COOKIE_PATH: &str = "/api/auth/oidc";
/// Time the user has at the provider to sign in.
pub const PENDING_LIFETIME_SECS: i64 = 600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    /// The console page to open after signing in (a local path).
    pub next: String,
    pub expires_at_ms: i64,
}

/// 32 random bytes, base64url: state, nonce and PKCE verifier (RFC 7636 §4.1 wants 43-128
/// characters from the unreserved set; this gives 43).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// RFC 7636 §4.2, method S256.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl PendingLogin {
    pub fn start(next: String) -> Self {
        Self {
            state: random_token(),
            nonce: random_token(),
            code_verifier: random_token(),
            next,
            expires_at_ms: now_ms().saturating_add(PENDING_LIFETIME_SECS * 1000),
        }
    }

    pub fn expired(&self) -> bool {
        now_ms() >= self.expires_at_ms
    }
}

/// Seals and opens pending sign-ins.
pub struct PendingSeal {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for PendingSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingSeal(..)")
    }
}

impl PendingSeal {
    /// Every replica with the same client secret derives the same key.
    pub fn from_client_secret(secret: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"talos-dr oidc pending sign-in v1\0");
        hasher.update(secret.as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        Self {
            cipher: Aes256Gcm::new((&key).into()),
        }
    }

    pub fn seal(&self, pending: &PendingLogin) -> Option<String> {
        let plain = serde_json::to_vec(pending).ok()?;
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain.as_slice())
            .ok()?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// `None` for anything this console did not seal (or sealed under another secret).
    pub fn open(&self, cookie: &str) -> Option<PendingLogin> {
        let bytes = URL_SAFE_NO_PAD.decode(cookie).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), sealed).ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

/// Where to go after signing in: a path on this console, never another site (`//host`,
/// `/\host`, or a full URL would make the console an open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.starts_with("/api/")
                && !path.chars().any(char::is_control) =>
        {
            path.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_the_rfc_example() {
        // RFC 7636 appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(random_token().len(), 43);
        assert_ne!(random_token(), random_token());
    }

    #[test]
    fn a_sealed_login_opens_only_with_the_same_secret() {
        let pending = PendingLogin::start("/clusters/prod".into());
        let seal = PendingSeal::from_client_secret("one");
        let cookie = seal.seal(&pending).expect("seals");
        assert_eq!(seal.open(&cookie), Some(pending.clone()));
        assert_eq!(PendingSeal::from_client_secret("two").open(&cookie), None);
        let mut tampered = URL_SAFE_NO_PAD.decode(&cookie).expect("b64");
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(seal.open(&URL_SAFE_NO_PAD.encode(tampered)), None);
        assert_eq!(seal.open("short"), None);
        assert!(!pending.expired());
    }

    #[test]
    fn next_stays_on_this_console() {
        assert_eq!(
            safe_next(Some("/clusters/prod?tab=1")),
            "/clusters/prod?tab=1"
        );
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/api/session",
            "x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
