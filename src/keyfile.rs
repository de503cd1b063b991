//! Heartbeat key files: the keys of a standalone agent and of `failover witness`,
//! read from disk at start and again on SIGHUP (a key rotation).
//!
//! Owns reading the files and the reload's log lines. The keys themselves and the
//! MACs are `membership::Keyring` (sans-IO); this is the IO around it. It never logs
//! key material.

use std::path::{Path, PathBuf};

use tracing::{error, info};

use crate::membership::{AuthError, Keyring, MIN_KEY_LEN};
use crate::telemetry::error_report;

/// Why the key files gave no keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the heartbeat key file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unusable heartbeat key")]
    Key {
        path: PathBuf,
        #[source]
        source: AuthError,
    },
}

/// The key file signed with and, during a rotation, the previous one also accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFiles {
    pub current: PathBuf,
    pub previous: Option<PathBuf>,
}

impl KeyFiles {
    /// Reads both files into a keyring.
    pub fn read(&self) -> Result<Keyring, KeyFileError> {
        let current = read_key_file(&self.current)?;
        let previous = self.previous.as_deref().map(read_key_file).transpose()?;
        // Name the file that holds the short key.
        let path = match (&self.previous, &previous) {
            (Some(path), Some(key)) if key.len() < MIN_KEY_LEN => path,
            _ => &self.current,
        }
        .clone();
        Keyring::new(current, previous).map_err(|source| KeyFileError::Key { path, source })
    }

    /// Reads the files again (SIGHUP): the new keyring, or `None` when a file
    /// cannot be read or holds a short key, and the running keys stay. Logged
    /// either way, in the caller's span (its cluster and node).
    pub fn reread(&self) -> Option<Keyring> {
        match self.read() {
            Ok(keys) => {
                info!(
                    previous = self.previous.is_some(),
                    "heartbeat keys reloaded"
                );
                Some(keys)
            }
            Err(error) => {
                error!(error = %error_report(&error), "heartbeat keys not reloaded; keeping the running keys");
                None
            }
        }
    }
}

/// Reads a heartbeat key file. Trailing whitespace is not part of the key, so a key
/// written with `echo` or an editor works the same on every member.
pub fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyFileError> {
    let mut key = std::fs::read(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    while key.last().is_some_and(u8::is_ascii_whitespace) {
        key.pop();
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_the_file_with_the_short_key() {
        let dir = std::env::temp_dir().join(format!("keyfile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        let short = dir.join("short");
        std::fs::write(&good, "0123456789abcdef0123\n").unwrap();
        std::fs::write(&short, "short\n").unwrap();
        let files = |current: &Path, previous: Option<&Path>| KeyFiles {
            current: current.to_owned(),
            previous: previous.map(Path::to_owned),
        };
        assert!(files(&good, Some(&good)).read().is_ok());
        for (current, previous) in [(&short, Some(&good)), (&good, Some(&short)), (&short, None)] {
            match files(current, previous.map(PathBuf::as_path)).read() {
                Err(KeyFileError::Key { path, .. }) => assert_eq!(&path, short.as_path()),
                other => panic!("{other:?}"),
            }
        }
        assert!(files(&good, None).reread().is_some());
        assert!(files(&dir.join("missing"), None).reread().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
