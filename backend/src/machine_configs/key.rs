//! The key machine configuration backups are sealed with, and the sealing itself.
//!
//! Machine configs hold the cluster's CA keys and bootstrap tokens, so a copy on the console's
//! disk must be useless without the key: AES-256-GCM with a fresh random nonce per file, and the
//! backup's id, cluster and node as associated data so a file cannot be passed off as another.

use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore as _;

/// The flag that names the key file, quoted in every key error.
pub const KEY_FLAG: &str = "--config-backup-key-file";
/// Files start with this, so a file from another format is named as such, not as a bad key.
const MAGIC: &[u8] = b"talos-dr machine-config v1\n";
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{KEY_FLAG} {path}: cannot read it: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{KEY_FLAG} {path}: the key must be 32 bytes, written as 64 hex digits or in base64; found {found}"
    )]
    BadKey { path: PathBuf, found: String },
}

/// Why a stored file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the file is not a machine config backup")]
    NotABackup,
    #[error("the file does not decrypt with the configured key (another key, or it was altered)")]
    WrongKeyOrAltered,
    #[error("encryption failed")]
    Encrypt,
}

/// 32 secret bytes; never printed.
#[derive(Clone)]
pub struct ConfigBackupKey([u8; 32]);

impl fmt::Debug for ConfigBackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfigBackupKey(..)")
    }
}

impl ConfigBackupKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Reads the key file: 64 hex digits or base64 of 32 bytes, surrounding whitespace ignored.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(text.trim()).map_err(|found| KeyError::BadKey {
            path: path.to_path_buf(),
            found,
        })
    }

    /// The key from its text form; the error says what was found instead (never the text).
    pub fn parse(text: &str) -> Result<Self, String> {
        // Base64 of 32 bytes always ends in '=', so text of hex digits only is read as hex.
        let decoded = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| format!("{} hex digits", text.len()))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| format!("{} characters that are neither hex nor base64", text.len()))?
        };
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| format!("{} bytes", decoded.len()))?;
        Ok(Self(bytes))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }

    /// `MAGIC`, a random nonce, then the ciphertext with its tag.
    pub fn seal(&self, plaintext: &[u8], binding: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    pub fn open(&self, file: &[u8], binding: &str) -> Result<Vec<u8>, SealError> {
        let rest = file.strip_prefix(MAGIC).ok_or(SealError::NotABackup)?;
        if rest.len() < NONCE_LEN {
            return Err(SealError::NotABackup);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: binding.as_bytes(),
                },
            )
            .map_err(|_| SealError::WrongKeyOrAltered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_keys_parse_and_other_lengths_are_named() {
        let hex_key = "11".repeat(32);
        assert!(ConfigBackupKey::parse(&hex_key).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert!(ConfigBackupKey::parse(&b64).is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([7u8; 16]);
        assert_eq!(
            ConfigBackupKey::parse(&short).err().as_deref(),
            Some("16 bytes")
        );
    }

    #[test]
    fn sealed_files_open_only_with_their_key_and_binding() {
        let key = ConfigBackupKey::from_bytes([1; 32]);
        let sealed = key.seal(b"machine: {}", "a").expect("sealed");
        assert!(!sealed.windows(8).any(|w| w == b"machine:"));
        assert_eq!(key.open(&sealed, "a").expect("opens"), b"machine: {}");
        assert!(key.open(&sealed, "b").is_err());
        let other = ConfigBackupKey::from_bytes([2; 32]);
        assert!(matches!(
            other.open(&sealed, "a"),
            Err(SealError::WrongKeyOrAltered)
        ));
        // A fresh nonce each time: the same plaintext never gives the same file.
        assert_ne!(sealed, key.seal(b"machine: {}", "a").expect("sealed"));
    }
}
