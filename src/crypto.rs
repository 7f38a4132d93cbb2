//! Credentials at rest: Fernet tokens that Python's `cryptography.fernet` reads and writes.
//!
//! Where the key comes from (docs/FORMAT.md §5.2): `encryption_key` in the configuration, else the
//! environment (`PROXYWHIRL_CACHE_ENCRYPTION_KEY`, with `PROXYWHIRL_CACHE_KEY_PREVIOUS` also
//! tried when decrypting). With neither, pwcache does not invent a key per process (upstream does,
//! and every credential it writes is lost at exit): on the first credential it needs to encrypt
//! or decrypt, it reads, or creates once, a key file `pwcache.key` (0600) in `l2_cache_dir`.
//! The same configuration therefore always finds the same key. No key text ever reaches a log
//! line or an error message.

use std::fs;
use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};

use fernet::{Fernet, MultiFernet};
use once_cell::sync::OnceCell;

use crate::entry::Secret;
use crate::error::{Error, Result};
use crate::fsutil;

pub const ENV_KEY: &str = "PROXYWHIRL_CACHE_ENCRYPTION_KEY";
pub const ENV_PREVIOUS_KEY: &str = "PROXYWHIRL_CACHE_KEY_PREVIOUS";
/// The name of the generated key file inside `l2_cache_dir`.
pub const KEY_FILE_NAME: &str = "pwcache.key";

/// Where this cache's key came from; shown in logs and docs, never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    Config,
    Environment,
    KeyFile(PathBuf),
}

/// Encrypts and decrypts credentials with the configured key(s).
pub struct Crypto {
    source: KeySource,
    keys: OnceCell<MultiFernet>,
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crypto")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn parse_key(text: &str, origin: &str) -> Result<Fernet> {
    Fernet::new(text.trim()).ok_or_else(|| {
        Error::Crypto(format!(
            "{origin} is not a Fernet key (32 bytes in URL-safe base64)"
        ))
    })
}

fn env_var(name: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if v.is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::Crypto(format!(
            "{name} is not a Fernet key (not UTF-8)"
        ))),
    }
}

/// A new random Fernet key (URL-safe base64 of 32 bytes), e.g. for `encryption_key` of a fleet
/// whose processes must all use the same one.
pub fn generate_key() -> String {
    Fernet::generate_key()
}

impl Crypto {
    /// Resolves the key as the module docs say. An invalid key, in the configuration or the
    /// environment, is an [`Error::Crypto`] now rather than a failure at the first credential.
    pub fn new(config_key: Option<&str>, l2_cache_dir: &Path) -> Result<Crypto> {
        if let Some(text) = config_key {
            let key = parse_key(text, "encryption_key")?;
            return Ok(Crypto::ready(KeySource::Config, vec![key]));
        }
        if let Some(current) = env_var(ENV_KEY)? {
            let mut keys = vec![parse_key(&current, ENV_KEY)?];
            if let Some(previous) = env_var(ENV_PREVIOUS_KEY)? {
                let previous_key = parse_key(&previous, ENV_PREVIOUS_KEY)?;
                if previous.trim() != current.trim() {
                    keys.push(previous_key);
                }
            }
            return Ok(Crypto::ready(KeySource::Environment, keys));
        }
        Ok(Crypto {
            source: KeySource::KeyFile(l2_cache_dir.join(KEY_FILE_NAME)),
            keys: OnceCell::new(),
        })
    }

    fn ready(source: KeySource, keys: Vec<Fernet>) -> Crypto {
        Crypto {
            source,
            keys: OnceCell::with_value(MultiFernet::new(keys)),
        }
    }

    /// Where the key comes from (a shared tier needs one key for every process, not a file
    /// per directory).
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    fn keys(&self) -> Result<&MultiFernet> {
        self.keys.get_or_try_init(|| match &self.source {
            KeySource::KeyFile(path) => Ok(MultiFernet::new(vec![load_or_create_key_file(path)?])),
            _ => unreachable!("configured keys are set at construction"),
        })
    }

    /// The Fernet token (URL-safe base64 text) of a credential.
    pub fn encrypt(&self, secret: &Secret) -> Result<String> {
        Ok(self.keys()?.encrypt(secret.expose().as_bytes()))
    }

    /// The credential in a Fernet token; `None` for an empty token or an empty credential.
    pub fn decrypt(&self, token: &str) -> Result<Option<Secret>> {
        if token.is_empty() {
            return Ok(None);
        }
        let plain = self.keys()?.decrypt(token).map_err(|_| {
            Error::Crypto("cannot decrypt a stored credential: wrong key or damaged token".into())
        })?;
        let text = String::from_utf8(plain)
            .map_err(|_| Error::Crypto("a decrypted credential is not UTF-8".into()))?;
        Ok(Secret::new(text))
    }
}

/// Reads the key file, or creates it when there is none. Creation publishes a complete file with
/// a hard link, so two processes starting together agree on one key.
fn load_or_create_key_file(path: &Path) -> Result<Fernet> {
    match fs::read_to_string(path) {
        Ok(text) => return parse_key(&text, &format!("key file {}", path.display())),
        Err(e) if e.kind() == IoKind::NotFound => {}
        Err(e) => return Err(Error::io("cannot read key file", path, e)),
    }
    fsutil::create_parent_dirs(path)?;
    let (temp, _) = fsutil::create_temp_beside(path)?;
    let key_text = Fernet::generate_key();
    let written = fs::write(&temp, key_text.as_bytes())
        .and_then(|_| fs::File::open(&temp)?.sync_all())
        .map_err(|e| Error::io("cannot write key file", &temp, e));
    let linked = written.and_then(|_| match fs::hard_link(&temp, path) {
        Ok(()) => {
            log::warn!(
                "no encryption key configured: generated one in {} (keep it to read the \
                 stored credentials)",
                path.display()
            );
            Ok(())
        }
        Err(e) if e.kind() == IoKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("cannot create key file", path, e)),
    });
    let _ = fs::remove_file(&temp);
    linked?;
    let text = fs::read_to_string(path).map_err(|e| Error::io("cannot read key file", path, e))?;
    parse_key(&text, &format!("key file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGVzdC1rZXktZm9yLXB3Y2FjaGUtZml4dHVyZXMtMDE=";

    #[test]
    fn round_trips_and_reads_python_tokens() {
        let c = Crypto::new(Some(KEY), Path::new("/nonexistent")).unwrap();
        let token = c.encrypt(&Secret::new("p@ss:wörd").unwrap()).unwrap();
        assert_eq!(c.decrypt(&token).unwrap().unwrap().expose(), "p@ss:wörd");
        // A token made by Python's cryptography.fernet with KEY (from the upstream fixtures).
        let py = "gAAAAABrBPG2-yPzWf2HQ1m9HkFshyy_ch46nPMwyl1oRkfKC1viQ-CT-KEmtONXg84GOoT2rz7MYtGr5gv04XGRBy8yfgL_LQ==";
        assert_eq!(c.decrypt(py).unwrap().unwrap().expose(), "user0");
    }

    #[test]
    fn invalid_keys_are_crypto_errors_without_the_key() {
        let e = Crypto::new(Some("not-a-key-secret"), Path::new("/x")).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::Crypto);
        assert!(!e.to_string().contains("not-a-key-secret"));
    }

    #[test]
    fn without_a_key_the_key_file_is_shared_by_later_handles() {
        let dir = tempfile::tempdir().unwrap();
        let c1 = Crypto {
            source: KeySource::KeyFile(dir.path().join("sub").join(KEY_FILE_NAME)),
            keys: OnceCell::new(),
        };
        let token = c1.encrypt(&Secret::new("alice").unwrap()).unwrap();
        let c2 = Crypto {
            source: KeySource::KeyFile(dir.path().join("sub").join(KEY_FILE_NAME)),
            keys: OnceCell::new(),
        };
        assert_eq!(c2.decrypt(&token).unwrap().unwrap().expose(), "alice");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join("sub").join(KEY_FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
