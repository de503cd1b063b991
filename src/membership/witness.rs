//! The witness datagrams of a standalone two-node cluster: an agent's request for
//! the witness vote and the witness's reply (`failover witness`, `crate::witness`).
//!
//! Owns their encoding and decoding. They share the heartbeats' framing and checks
//! (`wire::open`: size, magic, version, cluster id, then the HMAC-SHA256 trailer
//! under the cluster keyring), so a witness authenticates exactly like a member and
//! nothing past the cluster id is parsed before the MAC verified. It never panics on
//! any byte sequence and decides nothing: freshness (incarnation and sequence) is
//! the witness's decision, matching a reply to its request the agent's.
//!
//! Layout, version 1 (big-endian; `str` = u8 length + UTF-8 bytes):
//!
//! ```text
//! offset  size  field
//! 0       4     magic "FOWT"
//! 4       1     version = 1
//! 5       1     kind: 0 = request, 1 = reply
//! 6       str   cluster id (namespace/name of the FailoverCluster)
//! ..      str   node (the requester; in a reply, the node it answers)
//! ..      8     nonce (random per request; a reply echoes it)
//! ..      8     witness boot (request: the boot the agent last learned, 0 = none;
//!               reply: the witness's current boot)
//! request:
//! ..      8     incarnation of the requesting agent (its heartbeats' incarnation)
//! ..      8     sequence (strictly increases within an incarnation)
//! ..      8     duration asked for, in ms
//! reply:
//! ..      1     verdict: 0 = granted, 1 = held by another node, 2 = restarting,
//!               3 = other boot (ask again with the boot of this reply)
//! ..      8     ms: granted duration, or how long the refusal lasts (0 for 3)
//! ..      str   holder (verdict 1; empty otherwise)
//! end-32  32    HMAC-SHA256 over every byte before it
//! ```
//!
//! The boot is a random number the witness draws at every start. A request signed
//! for an older boot is refused with verdict 3, so a request recorded before a
//! witness restart cannot be replayed after it (the witness forgot the sequence
//! numbers it had seen); within one boot the incarnation and sequence do that.

use super::auth::Keyring;
use super::wire::{DropReason, EncodeError, MAX_DATAGRAM, Reader, Writer, open};

/// First bytes of every witness datagram.
pub const MAGIC: &[u8; 4] = b"FOWT";
/// The witness wire version this code writes and the only one it reads.
pub const VERSION: u8 = 1;
const KIND_REQUEST: u8 = 0;
const KIND_REPLY: u8 = 1;

/// An agent asks for the witness vote for `duration_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessRequest {
    pub cluster: String,
    pub node: String,
    pub nonce: u64,
    /// The witness boot the agent last learned from a reply (0: none yet).
    pub boot: u64,
    pub incarnation: u64,
    pub seq: u64,
    pub duration_ms: u64,
}

/// What the witness answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The vote is the requester's for `ms`, from when the witness received the
    /// request.
    Granted,
    /// Another node holds the vote for `ms` more.
    Held { holder: String },
    /// The witness (re)started less than the longest hold it may have granted
    /// before: it grants nothing for `ms` more.
    Restarting,
    /// The request named another witness boot: ask again with the reply's.
    OtherBoot,
}

/// The witness's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessReply {
    pub cluster: String,
    pub node: String,
    /// The request's nonce.
    pub nonce: u64,
    /// The witness's current boot.
    pub boot: u64,
    pub verdict: Verdict,
    /// The granted duration, or how long the refusal lasts, in ms.
    pub ms: u64,
}

impl WitnessRequest {
    /// Encodes and signs with the keyring's current key.
    pub fn encode(&self, keys: &Keyring) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::header(MAGIC, VERSION, KIND_REQUEST, &self.cluster)?;
        w.str(&self.node)?;
        w.u64(self.nonce);
        w.u64(self.boot);
        w.u64(self.incarnation);
        w.u64(self.seq);
        w.u64(self.duration_ms);
        w.seal(keys)
    }

    /// Decodes a request of `cluster`, verifying its MAC with any key of `keys`.
    pub fn decode(bytes: &[u8], cluster: &str, keys: &Keyring) -> Result<Self, DropReason> {
        let mut r = opened(bytes, KIND_REQUEST, cluster, keys)?;
        let request = WitnessRequest {
            cluster: cluster.to_owned(),
            node: r.str()?.to_owned(),
            nonce: r.u64()?,
            boot: r.u64()?,
            incarnation: r.u64()?,
            seq: r.u64()?,
            duration_ms: r.u64()?,
        };
        r.finish()?;
        Ok(request)
    }
}

impl WitnessReply {
    /// Encodes and signs with the keyring's current key.
    pub fn encode(&self, keys: &Keyring) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::header(MAGIC, VERSION, KIND_REPLY, &self.cluster)?;
        w.str(&self.node)?;
        w.u64(self.nonce);
        w.u64(self.boot);
        let (code, holder) = match &self.verdict {
            Verdict::Granted => (0, ""),
            Verdict::Held { holder } => (1, holder.as_str()),
            Verdict::Restarting => (2, ""),
            Verdict::OtherBoot => (3, ""),
        };
        w.u8(code);
        w.u64(self.ms);
        w.str(holder)?;
        w.seal(keys)
    }

    /// Decodes a reply of `cluster`, verifying its MAC with any key of `keys`.
    pub fn decode(bytes: &[u8], cluster: &str, keys: &Keyring) -> Result<Self, DropReason> {
        let mut r = opened(bytes, KIND_REPLY, cluster, keys)?;
        let node = r.str()?.to_owned();
        let nonce = r.u64()?;
        let boot = r.u64()?;
        let code = r.u8()?;
        let ms = r.u64()?;
        let holder = r.str()?;
        let verdict = match (code, holder.is_empty()) {
            (0, true) => Verdict::Granted,
            (1, false) => Verdict::Held {
                holder: holder.to_owned(),
            },
            (2, true) => Verdict::Restarting,
            (3, true) => Verdict::OtherBoot,
            _ => return Err(DropReason::Malformed),
        };
        r.finish()?;
        Ok(WitnessReply {
            cluster: cluster.to_owned(),
            node,
            nonce,
            boot,
            verdict,
            ms,
        })
    }
}

/// The common checks, then the kind byte.
fn opened<'a>(
    bytes: &'a [u8],
    kind: u8,
    cluster: &str,
    keys: &Keyring,
) -> Result<Reader<'a>, DropReason> {
    let (found, r) = open(bytes, MAX_DATAGRAM, MAGIC, VERSION, cluster, keys)?;
    if found != kind {
        return Err(DropReason::Malformed);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::auth::MAC_LEN;
    use proptest::prelude::*;

    fn keys() -> Keyring {
        Keyring::new(b"0123456789abcdef0123456789abcdef".to_vec(), None).unwrap()
    }

    fn request() -> WitnessRequest {
        WitnessRequest {
            cluster: "default/pair".into(),
            node: "a".into(),
            nonce: 0x1234,
            boot: 77,
            incarnation: 5,
            seq: 9,
            duration_ms: 1_000,
        }
    }

    fn reply(verdict: Verdict) -> WitnessReply {
        WitnessReply {
            cluster: "default/pair".into(),
            node: "a".into(),
            nonce: 0x1234,
            boot: 77,
            verdict,
            ms: 640,
        }
    }

    #[test]
    fn round_trips() {
        let bytes = request().encode(&keys()).unwrap();
        assert_eq!(&bytes[..4], MAGIC);
        assert_eq!(
            WitnessRequest::decode(&bytes, "default/pair", &keys()),
            Ok(request())
        );
        for verdict in [
            Verdict::Granted,
            Verdict::Held { holder: "b".into() },
            Verdict::Restarting,
            Verdict::OtherBoot,
        ] {
            let bytes = reply(verdict.clone()).encode(&keys()).unwrap();
            assert_eq!(
                WitnessReply::decode(&bytes, "default/pair", &keys()),
                Ok(reply(verdict))
            );
        }
    }

    #[test]
    fn refuses_with_reasons() {
        let bytes = request().encode(&keys()).unwrap();
        let decode = |b: &[u8]| WitnessRequest::decode(b, "default/pair", &keys());
        assert_eq!(
            WitnessRequest::decode(&bytes, "default/other", &keys()),
            Err(DropReason::ForeignCluster)
        );
        let wrong = Keyring::new(b"another key of enough length!!!!".to_vec(), None).unwrap();
        assert_eq!(
            WitnessRequest::decode(&bytes, "default/pair", &wrong),
            Err(DropReason::BadMac)
        );
        let mut tampered = bytes.clone();
        let i = tampered.len() - MAC_LEN - 1;
        tampered[i] ^= 1;
        assert_eq!(decode(&tampered), Err(DropReason::BadMac));
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "truncated to {n} bytes");
        }
        let mut version = bytes.clone();
        version[4] = VERSION + 1;
        assert_eq!(decode(&version), Err(DropReason::UnsupportedVersion));
        assert_eq!(
            decode(&vec![0; MAX_DATAGRAM + 1]),
            Err(DropReason::Oversized)
        );
        // A reply is not a request (and a heartbeat is neither).
        let answer = reply(Verdict::Granted).encode(&keys()).unwrap();
        assert_eq!(decode(&answer), Err(DropReason::Malformed));
    }

    #[test]
    fn a_reply_whose_holder_does_not_fit_its_verdict_is_malformed() {
        // Held without a holder, re-signed so that only the content is wrong.
        let mut bytes = reply(Verdict::Granted).encode(&keys()).unwrap();
        bytes.truncate(bytes.len() - MAC_LEN);
        let code = bytes.len() - 1 - 8 - 1;
        bytes[code] = 1;
        let mac = keys().sign(&bytes);
        bytes.extend_from_slice(&mac);
        assert_eq!(
            WitnessReply::decode(&bytes, "default/pair", &keys()),
            Err(DropReason::Malformed)
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = WitnessRequest::decode(&bytes, "default/pair", &keys());
            let _ = WitnessReply::decode(&bytes, "default/pair", &keys());
        }

        #[test]
        fn mutated_requests_never_pass(pos in 0usize..200, bit in 0u8..8) {
            let mut bytes = request().encode(&keys()).unwrap();
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            prop_assert!(WitnessRequest::decode(&bytes, "default/pair", &keys()).is_err());
        }
    }
}
