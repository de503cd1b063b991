//! The heartbeat datagram: its fields and its byte layout.
//!
//! Owns encoding and decoding of one heartbeat, including the HMAC trailer. It never
//! trusts a byte it reads: every length is checked against what remains, every count
//! against [`MAX_DATAGRAM`], and nothing past the header is parsed before the MAC
//! verified. No byte sequence can make it panic (a proptest and a fuzz target check).
//!
//! Layout, version 3 (all integers big-endian, `str` = u8 length + UTF-8 bytes,
//! `list<T>` = u16 count + that many `T`). Version 2 added the reason of each
//! `unable` entry and the `failovers` list; version 3 the epoch and the Failed flag
//! of each `failovers` entry, which every member sends, not only the holder. A node
//! reads only its own version, so a rolling upgrade across versions looks like a
//! partition while it lasts.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "FOHB"
//! 4       1     version = 3
//! 5       1     flags: bit 0 = leaving (graceful exit announced); other bits must be 0
//! 6       str   cluster id (namespace/name of the FailoverCluster)
//! ..      str   sender node name
//! ..      8     incarnation (strictly increases across restarts of the sender)
//! ..      8     sequence number (strictly increases within an incarnation)
//! ..      8     config hash the sender runs
//! ..      list  peers:  str node, u64 incarnation, u64 last sequence received, u8 alive (0|1)
//! ..      list  claims: str group, u64 epoch, u8 state (0 = claiming, 1 = holding)
//! ..      list  grants: str group, str holder, u64 holder incarnation, u64 epoch
//! ..      list  unable: str group, u8 reason (groups the sender cannot host:
//!               0 = VIP subnet absent, 1 = interface down, 2 = resource failed)
//! ..      list  failovers: str group, u64 epoch, u64 clear token, u8 failed (0|1),
//!               list<u64> ages in ms (for each group with a failover limit that the
//!               sender holds, or whose count or Failed state it knows: the automatic
//!               failovers within the limit's period, the epoch of the take they were
//!               counted up to, the clear-failures value they count from, and whether
//!               the group is Failed)
//! end-32  32    HMAC-SHA256 over every byte before it, keyed by the cluster key
//! ```

use super::auth::{Keyring, MAC_LEN};
use crate::placement::UnableReason;

/// First bytes of every heartbeat.
pub const MAGIC: &[u8; 4] = b"FOHB";
/// The wire version this code writes and the only one it reads.
pub const VERSION: u8 = 3;
/// Largest datagram accepted or produced. A heartbeat of 64 members and a few hundred
/// groups fits; larger ones are refused on both sides rather than fragmented silently.
pub const MAX_DATAGRAM: usize = 60_000;
/// Longest node, group or cluster name (a Kubernetes name fits in 253 bytes).
pub const MAX_NAME: usize = 253;
const FLAG_LEAVING: u8 = 0b1;

/// One peer as the sender sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerReport {
    /// The peer's node name.
    pub node: String,
    /// The peer's incarnation the sequence below belongs to.
    pub incarnation: u64,
    /// Highest sequence number the sender has accepted from that peer.
    pub last_seq: u64,
    /// Whether the sender hears the peer (a valid heartbeat within `deadAfter`).
    pub alive: bool,
}

/// Whether a claimed group is already online on the sender or only wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimState {
    /// The sender asks for the group and has not started it.
    Claiming,
    /// The sender runs (or is starting or stopping) the group's resources.
    Holding,
}

/// A group the sender wants or holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub group: String,
    pub epoch: u64,
    pub state: ClaimState,
}

/// A vote of the sender: it lets `holder` own `group` under `epoch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub group: String,
    pub holder: String,
    pub holder_incarnation: u64,
    pub epoch: u64,
}

/// A group the sender cannot host now, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unable {
    pub group: String,
    pub reason: UnableReason,
}

/// The failover history of a group as the sender knows it: its own while it holds
/// the group, else the one it adopted. Every node adopts the record of the highest
/// epoch (the latest owner's count), so a limit is counted the same on every node,
/// and a restarted agent learns the count and the Failed state from its peers, also
/// while nobody holds the group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFailovers {
    pub group: String,
    /// The epoch of the take the count belongs to (the holder's epoch).
    pub epoch: u64,
    /// Which clear-failures value the history counts from (0: never cleared). A
    /// receiver with another value ignores it: one of the two has not seen the
    /// latest clear yet.
    pub clear_token: u64,
    /// Whether the group is Failed: a failover past the limit was refused and
    /// nobody has run the group since.
    pub failed: bool,
    /// How long ago each automatic failover within the period happened, in ms.
    pub ages_ms: Vec<u64>,
}

/// One decoded, authenticated heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub cluster: String,
    pub sender: String,
    pub incarnation: u64,
    pub seq: u64,
    pub config_hash: u64,
    pub leaving: bool,
    pub peers: Vec<PeerReport>,
    pub claims: Vec<Claim>,
    pub grants: Vec<Grant>,
    pub unable: Vec<Unable>,
    pub failovers: Vec<GroupFailovers>,
}

/// Why a datagram was dropped. Each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum DropReason {
    #[error("datagram larger than {MAX_DATAGRAM} bytes")]
    Oversized,
    #[error("malformed datagram")]
    Malformed,
    #[error("unsupported wire version")]
    UnsupportedVersion,
    #[error("datagram of another cluster")]
    ForeignCluster,
    #[error("authentication failed (wrong key or tampered datagram)")]
    BadMac,
    #[error("sender is not a member of this cluster")]
    UnknownSender,
    #[error("heartbeat from this node itself")]
    FromSelf,
    #[error("replayed or reordered datagram (old incarnation or sequence)")]
    Replayed,
}

impl DropReason {
    /// Every reason, for exporting one counter each.
    pub const ALL: [DropReason; 8] = [
        DropReason::Oversized,
        DropReason::Malformed,
        DropReason::UnsupportedVersion,
        DropReason::ForeignCluster,
        DropReason::BadMac,
        DropReason::UnknownSender,
        DropReason::FromSelf,
        DropReason::Replayed,
    ];

    /// Stable snake-case label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Oversized => "oversized",
            DropReason::Malformed => "malformed",
            DropReason::UnsupportedVersion => "unsupported_version",
            DropReason::ForeignCluster => "foreign_cluster",
            DropReason::BadMac => "bad_mac",
            DropReason::UnknownSender => "unknown_sender",
            DropReason::FromSelf => "from_self",
            DropReason::Replayed => "replayed",
        }
    }
}

/// Why a heartbeat could not be encoded (a bug or a config beyond the wire's limits).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error("name {0:?} is longer than {MAX_NAME} bytes")]
    NameTooLong(String),
    #[error("more than {} entries in one list", u16::MAX)]
    TooManyEntries,
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("text of {0} bytes is longer than the message allows")]
    TextTooLong(usize),
}

impl Heartbeat {
    /// Encodes and signs with the keyring's current key.
    pub fn encode(&self, keys: &Keyring) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::header(
            MAGIC,
            VERSION,
            if self.leaving { FLAG_LEAVING } else { 0 },
            &self.cluster,
        )?;
        w.str(&self.sender)?;
        w.u64(self.incarnation);
        w.u64(self.seq);
        w.u64(self.config_hash);
        w.count(self.peers.len())?;
        for p in &self.peers {
            w.str(&p.node)?;
            w.u64(p.incarnation);
            w.u64(p.last_seq);
            w.0.push(u8::from(p.alive));
        }
        w.count(self.claims.len())?;
        for c in &self.claims {
            w.str(&c.group)?;
            w.u64(c.epoch);
            w.0.push(match c.state {
                ClaimState::Claiming => 0,
                ClaimState::Holding => 1,
            });
        }
        w.count(self.grants.len())?;
        for g in &self.grants {
            w.str(&g.group)?;
            w.str(&g.holder)?;
            w.u64(g.holder_incarnation);
            w.u64(g.epoch);
        }
        w.count(self.unable.len())?;
        for u in &self.unable {
            w.str(&u.group)?;
            w.0.push(unable_code(u.reason));
        }
        w.count(self.failovers.len())?;
        for f in &self.failovers {
            w.str(&f.group)?;
            w.u64(f.epoch);
            w.u64(f.clear_token);
            w.0.push(u8::from(f.failed));
            w.count(f.ages_ms.len())?;
            for age in &f.ages_ms {
                w.u64(*age);
            }
        }
        w.seal(keys)
    }

    /// Decodes a datagram of `cluster`, verifying its MAC with any key of `keys`.
    pub fn decode(bytes: &[u8], cluster: &str, keys: &Keyring) -> Result<Heartbeat, DropReason> {
        let (flags, mut r) = open(bytes, MAX_DATAGRAM, MAGIC, VERSION, cluster, keys)?;
        if flags & !FLAG_LEAVING != 0 {
            return Err(DropReason::Malformed);
        }
        let sender = r.str()?.to_owned();
        let incarnation = r.u64()?;
        let seq = r.u64()?;
        let config_hash = r.u64()?;
        let peers = r.list(|r| {
            Ok(PeerReport {
                node: r.str()?.to_owned(),
                incarnation: r.u64()?,
                last_seq: r.u64()?,
                alive: r.bool()?,
            })
        })?;
        let claims = r.list(|r| {
            Ok(Claim {
                group: r.str()?.to_owned(),
                epoch: r.u64()?,
                state: match r.u8()? {
                    0 => ClaimState::Claiming,
                    1 => ClaimState::Holding,
                    _ => return Err(DropReason::Malformed),
                },
            })
        })?;
        let grants = r.list(|r| {
            Ok(Grant {
                group: r.str()?.to_owned(),
                holder: r.str()?.to_owned(),
                holder_incarnation: r.u64()?,
                epoch: r.u64()?,
            })
        })?;
        let unable = r.list(|r| {
            Ok(Unable {
                group: r.str()?.to_owned(),
                reason: unable_reason(r.u8()?)?,
            })
        })?;
        let failovers = r.list(|r| {
            Ok(GroupFailovers {
                group: r.str()?.to_owned(),
                epoch: r.u64()?,
                clear_token: r.u64()?,
                failed: r.bool()?,
                ages_ms: r.list(Reader::u64)?,
            })
        })?;
        r.finish()?;
        Ok(Heartbeat {
            cluster: cluster.to_owned(),
            sender,
            incarnation,
            seq,
            config_hash,
            leaving: flags & FLAG_LEAVING != 0,
            peers,
            claims,
            grants,
            unable,
            failovers,
        })
    }
}

fn unable_code(reason: UnableReason) -> u8 {
    match reason {
        UnableReason::SubnetAbsent => 0,
        UnableReason::InterfaceDown => 1,
        UnableReason::ResourceFailed => 2,
    }
}

fn unable_reason(code: u8) -> Result<UnableReason, DropReason> {
    UnableReason::ALL
        .into_iter()
        .find(|r| unable_code(*r) == code)
        .ok_or(DropReason::Malformed)
}

/// Checks the common head of a message of at most `max` bytes (magic, version,
/// cluster id) and its MAC, and returns the byte after the version (flags, or the
/// kind of a witness or push message) and a reader positioned after the cluster id.
/// The other messages of the protocol (`super::witness`, `super::push`) share this
/// framing, so they are refused the same way; their distinct magics, the first bytes
/// under the MAC, keep a MAC of one kind from ever verifying as another.
pub(super) fn open<'a>(
    bytes: &'a [u8],
    max: usize,
    magic: &[u8; 4],
    version: u8,
    cluster: &str,
    keys: &Keyring,
) -> Result<(u8, Reader<'a>), DropReason> {
    if bytes.len() > max {
        return Err(DropReason::Oversized);
    }
    let Some(body_len) = bytes.len().checked_sub(MAC_LEN) else {
        return Err(DropReason::Malformed);
    };
    let (body, mac) = bytes.split_at(body_len);
    let mut r = Reader(body);
    if r.take(4)? != magic {
        return Err(DropReason::Malformed);
    }
    if r.u8()? != version {
        return Err(DropReason::UnsupportedVersion);
    }
    let flags = r.u8()?;
    // The cluster id is read before the MAC so that datagrams of a neighbouring
    // cluster (another key) are counted as foreign rather than as attacks.
    if r.str()? != cluster {
        return Err(DropReason::ForeignCluster);
    }
    if !keys.verify(body, mac) {
        return Err(DropReason::BadMac);
    }
    Ok((flags, r))
}

pub(super) struct Writer(Vec<u8>);

impl Writer {
    /// Magic, version, the flags (or kind) byte and the cluster id: the head that
    /// [`open`] checks.
    pub(super) fn header(
        magic: &[u8; 4],
        version: u8,
        flags: u8,
        cluster: &str,
    ) -> Result<Self, EncodeError> {
        let mut w = Writer(Vec::with_capacity(256));
        w.0.extend_from_slice(magic);
        w.0.push(version);
        w.0.push(flags);
        w.str(cluster)?;
        Ok(w)
    }

    /// Appends the MAC of everything written under the keyring's current key; the
    /// whole datagram must fit in [`MAX_DATAGRAM`].
    pub(super) fn seal(self, keys: &Keyring) -> Result<Vec<u8>, EncodeError> {
        self.seal_within(MAX_DATAGRAM, keys)
    }

    /// [`Self::seal`] for a message of at most `max` bytes.
    pub(super) fn seal_within(
        mut self,
        max: usize,
        keys: &Keyring,
    ) -> Result<Vec<u8>, EncodeError> {
        let mac = keys.sign(&self.0);
        self.0.extend_from_slice(&mac);
        if self.0.len() > max {
            return Err(EncodeError::TooLarge {
                len: self.0.len(),
                max,
            });
        }
        Ok(self.0)
    }

    /// Bytes as they are, of a length the reader knows.
    pub(super) fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A text of any length up to `u32::MAX` bytes: u32 length + UTF-8 bytes.
    pub(super) fn long_str(&mut self, s: &str) -> Result<(), EncodeError> {
        let len = u32::try_from(s.len()).map_err(|_| EncodeError::TextTooLong(s.len()))?;
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }

    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(super) fn str(&mut self, s: &str) -> Result<(), EncodeError> {
        let len = u8::try_from(s.len())
            .ok()
            .filter(|&l| usize::from(l) <= MAX_NAME)
            .ok_or_else(|| EncodeError::NameTooLong(s.to_owned()))?;
        self.0.push(len);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }

    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn count(&mut self, n: usize) -> Result<(), EncodeError> {
        let n = u16::try_from(n).map_err(|_| EncodeError::TooManyEntries)?;
        self.0.extend_from_slice(&n.to_be_bytes());
        Ok(())
    }
}

pub(super) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DropReason> {
        if self.0.len() < n {
            return Err(DropReason::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// Every byte must have been read: trailing bytes are malformed.
    pub(super) fn finish(self) -> Result<(), DropReason> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DropReason::Malformed)
        }
    }

    pub(super) fn u8(&mut self) -> Result<u8, DropReason> {
        Ok(self.take(1)?[0])
    }

    fn bool(&mut self) -> Result<bool, DropReason> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DropReason::Malformed),
        }
    }

    pub(super) fn u64(&mut self) -> Result<u64, DropReason> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }

    pub(super) fn str(&mut self) -> Result<&'a str, DropReason> {
        let len = usize::from(self.u8()?);
        if len > MAX_NAME {
            return Err(DropReason::Malformed);
        }
        std::str::from_utf8(self.take(len)?).map_err(|_| DropReason::Malformed)
    }

    /// A text written by [`Writer::long_str`].
    pub(super) fn long_str(&mut self) -> Result<&'a str, DropReason> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        let len = usize::try_from(u32::from_be_bytes(b)).map_err(|_| DropReason::Malformed)?;
        std::str::from_utf8(self.take(len)?).map_err(|_| DropReason::Malformed)
    }

    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DropReason>,
    ) -> Result<Vec<T>, DropReason> {
        let mut b = [0u8; 2];
        b.copy_from_slice(self.take(2)?);
        let n = usize::from(u16::from_be_bytes(b));
        // Each entry takes at least 2 bytes, so a count larger than that is a lie and
        // must not reserve memory for it.
        if n > self.0.len() / 2 {
            return Err(DropReason::Malformed);
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> Keyring {
        Keyring::new(b"0123456789abcdef0123456789abcdef".to_vec(), None).unwrap()
    }

    fn sample() -> Heartbeat {
        Heartbeat {
            cluster: "default/edge".into(),
            sender: "n1".into(),
            incarnation: 7,
            seq: 42,
            config_hash: 0xdead_beef,
            leaving: true,
            peers: vec![PeerReport {
                node: "n2".into(),
                incarnation: 3,
                last_seq: 9,
                alive: true,
            }],
            claims: vec![Claim {
                group: "web".into(),
                epoch: 5,
                state: ClaimState::Holding,
            }],
            grants: vec![Grant {
                group: "web".into(),
                holder: "n1".into(),
                holder_incarnation: 7,
                epoch: 5,
            }],
            unable: vec![Unable {
                group: "db".into(),
                reason: UnableReason::InterfaceDown,
            }],
            failovers: vec![GroupFailovers {
                group: "web".into(),
                epoch: 5,
                clear_token: 42,
                failed: true,
                ages_ms: vec![1_500, 60_000],
            }],
        }
    }

    #[test]
    fn round_trip() {
        let hb = sample();
        let bytes = hb.encode(&keys()).unwrap();
        assert_eq!(&bytes[..4], MAGIC);
        assert_eq!(bytes[4], VERSION);
        assert_eq!(bytes[5], FLAG_LEAVING);
        assert_eq!(Heartbeat::decode(&bytes, "default/edge", &keys()), Ok(hb));
    }

    #[test]
    fn fixed_layout_of_a_minimal_heartbeat() {
        let hb = Heartbeat {
            cluster: "c".into(),
            sender: "a".into(),
            incarnation: 1,
            seq: 2,
            config_hash: 3,
            leaving: false,
            peers: vec![],
            claims: vec![],
            grants: vec![],
            unable: vec![],
            failovers: vec![],
        };
        let bytes = hb.encode(&keys()).unwrap();
        let mut expected = b"FOHB".to_vec();
        expected.extend_from_slice(&[VERSION, 0, 1, b'c', 1, b'a']);
        expected.extend_from_slice(&1u64.to_be_bytes());
        expected.extend_from_slice(&2u64.to_be_bytes());
        expected.extend_from_slice(&3u64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&bytes[..bytes.len() - MAC_LEN], &expected[..]);
        assert_eq!(bytes.len(), expected.len() + MAC_LEN);
    }

    #[test]
    fn drops_with_reasons() {
        let bytes = sample().encode(&keys()).unwrap();
        assert_eq!(
            Heartbeat::decode(&bytes, "other", &keys()),
            Err(DropReason::ForeignCluster)
        );
        let wrong = Keyring::new(b"another key of enough length!!!!".to_vec(), None).unwrap();
        assert_eq!(
            Heartbeat::decode(&bytes, "default/edge", &wrong),
            Err(DropReason::BadMac)
        );
        let mut tampered = bytes.clone();
        let i = tampered.len() - MAC_LEN - 1;
        tampered[i] ^= 1;
        assert_eq!(
            Heartbeat::decode(&tampered, "default/edge", &keys()),
            Err(DropReason::BadMac)
        );
        let mut version = bytes.clone();
        version[4] = VERSION - 1;
        assert_eq!(
            Heartbeat::decode(&version, "default/edge", &keys()),
            Err(DropReason::UnsupportedVersion)
        );
        assert_eq!(
            Heartbeat::decode(&bytes[..10], "default/edge", &keys()),
            Err(DropReason::Malformed)
        );
        assert_eq!(
            Heartbeat::decode(&vec![0; MAX_DATAGRAM + 1], "default/edge", &keys()),
            Err(DropReason::Oversized)
        );
    }

    #[test]
    fn every_unable_reason_has_its_own_code_and_unknown_codes_are_malformed() {
        for reason in UnableReason::ALL {
            assert_eq!(unable_reason(unable_code(reason)), Ok(reason));
        }
        assert_eq!(unable_reason(3), Err(DropReason::Malformed));
    }

    #[test]
    fn a_failed_flag_other_than_0_or_1_is_malformed() {
        // The sample's last entry is its failovers record: failed flag, then the
        // ages (u16 count and two u64).
        let bytes = sample().encode(&keys()).unwrap();
        let mut body = bytes[..bytes.len() - MAC_LEN].to_vec();
        let flag = body.len() - (2 + 2 * 8) - 1;
        assert_eq!(body[flag], 1);
        body[flag] = 2;
        let mac = keys().sign(&body);
        body.extend_from_slice(&mac);
        assert_eq!(
            Heartbeat::decode(&body, "default/edge", &keys()),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn previous_key_is_accepted_during_rotation() {
        let old = keys();
        let bytes = sample().encode(&old).unwrap();
        let rotated = Keyring::new(
            b"the new key, also 32 bytes long!".to_vec(),
            Some(b"0123456789abcdef0123456789abcdef".to_vec()),
        )
        .unwrap();
        assert!(Heartbeat::decode(&bytes, "default/edge", &rotated).is_ok());
    }

    #[test]
    fn names_beyond_the_limit_are_refused_when_encoding() {
        let mut hb = sample();
        hb.sender = "x".repeat(MAX_NAME + 1);
        assert!(matches!(
            hb.encode(&keys()),
            Err(EncodeError::NameTooLong(_))
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Heartbeat::decode(&bytes, "default/edge", &keys());
        }

        #[test]
        fn mutated_heartbeats_never_panic_and_never_pass(pos in 0usize..400, bit in 0u8..8) {
            let mut bytes = sample().encode(&keys()).unwrap();
            let pos = pos % bytes.len();
            bytes[pos] ^= 1 << bit;
            prop_assert!(Heartbeat::decode(&bytes, "default/edge", &keys()).is_err());
        }

        #[test]
        fn signed_garbage_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            // A body with a valid header and MAC but random contents exercises the
            // parser behind the MAC check, which random bytes alone never reach.
            let mut bytes = b"FOHB".to_vec();
            bytes.extend_from_slice(&[VERSION, 0, 12]);
            bytes.extend_from_slice(b"default/edge");
            bytes.extend_from_slice(&body);
            let mac = keys().sign(&bytes);
            bytes.extend_from_slice(&mac);
            let _ = Heartbeat::decode(&bytes, "default/edge", &keys());
        }
    }
}
