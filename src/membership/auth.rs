//! Heartbeat authentication: HMAC-SHA256 with a current key and, during a rotation,
//! the previous one.
//!
//! Owns the keys and the MAC computation. It never logs or formats key material and
//! compares MACs in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Length of the MAC trailer of every datagram.
pub const MAC_LEN: usize = 32;
/// Shortest key accepted: 128 bits.
pub const MIN_KEY_LEN: usize = 16;

/// Why a key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("heartbeat key is {0} bytes; at least {MIN_KEY_LEN} are required")]
    KeyTooShort(usize),
}

/// The keys a node signs with and accepts.
#[derive(Clone)]
pub struct Keyring {
    current: Vec<u8>,
    previous: Option<Vec<u8>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Signs with `current`; accepts `current` and `previous` (rotation).
    pub fn new(current: Vec<u8>, previous: Option<Vec<u8>>) -> Result<Self, AuthError> {
        for key in std::iter::once(&current).chain(previous.as_ref()) {
            if key.len() < MIN_KEY_LEN {
                return Err(AuthError::KeyTooShort(key.len()));
            }
        }
        Ok(Keyring { current, previous })
    }

    /// A keyring for clusters that explicitly opted out of authentication: every
    /// node uses the same public key, which only guards against corruption.
    pub fn insecure_public() -> Self {
        Keyring {
            current: b"failover-operator insecure public key".to_vec(),
            previous: None,
        }
    }

    fn mac(key: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; the constructor cannot fail for it.
        match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        }
    }

    /// The MAC of `body` under the current key.
    pub fn sign(&self, body: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = Self::mac(&self.current);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the MAC of `body` under the current or the previous key.
    pub fn verify(&self, body: &[u8], tag: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|key| {
                let mut mac = Self::mac(key);
                mac.update(body);
                mac.verify_slice(tag).is_ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            Keyring::new(vec![1; 8], None).unwrap_err(),
            AuthError::KeyTooShort(8)
        );
        assert!(Keyring::new(vec![1; 16], Some(vec![2; 3])).is_err());
    }

    #[test]
    fn debug_never_shows_key_material() {
        let k = Keyring::new(b"super secret key material".to_vec(), None).unwrap();
        assert!(!format!("{k:?}").contains("secret"));
    }

    #[test]
    fn sign_and_verify() {
        let k = Keyring::new(vec![7; 32], None).unwrap();
        let tag = k.sign(b"hello");
        assert!(k.verify(b"hello", &tag));
        assert!(!k.verify(b"hellO", &tag));
        assert!(!k.verify(b"hello", &tag[..31]));
    }
}
