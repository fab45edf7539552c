//! The cluster's configuration as the log records it: who votes, who learns, where each member
//! listens, which ids were removed for good, and the next id to hand out.
//!
//! A configuration travels whole (never as a delta) in a config entry of the log and in every
//! snapshot, so that a restarted peer finds it without replaying a chain of changes: the
//! latest config entry in its log, else its snapshot's (see `RaftLog::config`). It takes effect
//! on a peer as soon as the peer appends it (Raft thesis 4.1), and a follower whose log is cut
//! below it goes back to the one before.
//!
//! The binary form ([`ClusterConfig::encode`]) is versioned, and decoding never panics: config
//! entries reach a peer from the network and from disk.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};

use crate::membership::Membership;
use crate::types::{LogIndex, NodeId};

/// The whole configuration of a cluster (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The voters (incoming and, during joint consensus, outgoing) and the learners.
    pub membership: Membership,
    /// Where each member listens, as the operator gave it; opaque to Raft.
    pub addresses: BTreeMap<NodeId, String>,
    /// Learners the leader promotes to voters on its own once they have caught up.
    pub auto_promote: BTreeSet<NodeId>,
    /// Ids removed from the cluster: never members again, and answered `Removed`.
    pub removed: BTreeSet<NodeId>,
    /// The lowest id never handed out: a new member gets an id at least this high.
    pub next_id: NodeId,
}

/// A configuration and the index of the log entry that carries it (0 for the bootstrap
/// configuration, which no entry carries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigState {
    /// The index of the config entry, or of the snapshot position it came with.
    pub index: LogIndex,
    /// The configuration.
    pub config: ClusterConfig,
}

impl Default for ConfigState {
    /// No configuration known yet: a peer waiting to be told (it never campaigns).
    fn default() -> ConfigState {
        ConfigState { index: LogIndex::ZERO, config: ClusterConfig::unknown() }
    }
}

impl ConfigState {
    /// True if no configuration is known (a brand-new peer that was given no voters).
    pub fn is_unknown(&self) -> bool {
        self.config.membership.incoming().is_empty()
    }
}

/// Why bytes could not be read as a configuration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigDecodeError {
    /// The first byte names a format this build does not read.
    #[error("unknown configuration format version {0}")]
    UnknownVersion(u8),
    /// The bytes end before the configuration does.
    #[error("configuration truncated")]
    Truncated,
    /// Bytes follow the configuration.
    #[error("{0} bytes after the configuration")]
    TrailingBytes(usize),
    /// An address is not UTF-8.
    #[error("member {0}'s address is not UTF-8")]
    AddressNotUtf8(NodeId),
    /// The decoded sets contradict each other (a voter that is also a learner, a removed
    /// member, no voters, id 0, an id at or above `next_id`, an address of a non-member).
    #[error("inconsistent configuration: {0}")]
    Inconsistent(String),
}

const FORMAT_VERSION: u8 = 1;

impl ClusterConfig {
    /// A first configuration: `voters`, no learners, no addresses; ids after the highest
    /// voter are free.
    pub fn bootstrap(voters: impl IntoIterator<Item = NodeId>) -> ClusterConfig {
        let membership = Membership::new(voters);
        let next_id = NodeId(membership.voters().map(|v| v.0).max().unwrap_or(0) + 1);
        ClusterConfig {
            membership,
            addresses: BTreeMap::new(),
            auto_promote: BTreeSet::new(),
            removed: BTreeSet::new(),
            next_id,
        }
    }

    /// No configuration: no voters, nothing decided.
    pub fn unknown() -> ClusterConfig {
        ClusterConfig {
            membership: Membership::unknown(),
            addresses: BTreeMap::new(),
            auto_promote: BTreeSet::new(),
            removed: BTreeSet::new(),
            next_id: NodeId(1),
        }
    }

    /// True if `id` votes or learns in this configuration.
    pub fn is_member(&self, id: NodeId) -> bool {
        self.membership.is_voter(id) || self.membership.is_learner(id)
    }

    /// Every member (voters, then learners), each once, in id order.
    pub fn members(&self) -> BTreeSet<NodeId> {
        self.membership.voters().chain(self.membership.learners().iter().copied()).collect()
    }

    /// Panics-free consistency check (see [`ConfigDecodeError::Inconsistent`]).
    pub fn validate(&self) -> Result<(), String> {
        let m = &self.membership;
        if m.incoming().is_empty() {
            return Err("no voters".into());
        }
        let members = self.members();
        if let Some(both) = m.learners().iter().find(|l| m.is_voter(**l)) {
            return Err(format!("{both} is both a voter and a learner"));
        }
        if members.contains(&NodeId(0)) || self.removed.contains(&NodeId(0)) {
            return Err("node id 0 is reserved".into());
        }
        if let Some(back) = members.iter().find(|id| self.removed.contains(id)) {
            return Err(format!("{back} is a member and removed"));
        }
        if let Some(high) = members.iter().chain(&self.removed).find(|id| **id >= self.next_id) {
            return Err(format!("{high} is not below next id {}", self.next_id));
        }
        if let Some(stray) = self.addresses.keys().find(|id| !members.contains(id)) {
            return Err(format!("address for non-member {stray}"));
        }
        if let Some(stray) = self.auto_promote.iter().find(|id| !m.is_learner(**id)) {
            return Err(format!("{stray} marked for promotion but not a learner"));
        }
        Ok(())
    }

    /// The binary form: a version byte, then each set as a count and its ids, the addresses
    /// as (id, length, UTF-8 bytes), and `next_id`; integers little-endian.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_u8(FORMAT_VERSION);
        let m = &self.membership;
        for set in [m.incoming(), m.outgoing(), m.learners(), &self.auto_promote, &self.removed] {
            out.put_u32_le(set.len() as u32);
            for id in set {
                out.put_u64_le(id.0);
            }
        }
        out.put_u32_le(self.addresses.len() as u32);
        for (id, address) in &self.addresses {
            out.put_u64_le(id.0);
            out.put_u32_le(address.len() as u32);
            out.put_slice(address.as_bytes());
        }
        out.put_u64_le(self.next_id.0);
        out.freeze()
    }

    /// The length of [`ClusterConfig::encode`]'s form, without building it (message sizes
    /// are counted per message).
    pub fn encoded_len(&self) -> usize {
        let m = &self.membership;
        let sets = [m.incoming(), m.outgoing(), m.learners(), &self.auto_promote, &self.removed];
        let ids: usize = sets.iter().map(|set| 4 + 8 * set.len()).sum();
        let addresses: usize = self.addresses.values().map(|a| 8 + 4 + a.len()).sum();
        1 + ids + 4 + addresses + 8
    }

    /// Reads [`ClusterConfig::encode`]'s form back. Never panics; allocates in proportion to
    /// the input only.
    pub fn decode(bytes: &[u8]) -> Result<ClusterConfig, ConfigDecodeError> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(ConfigDecodeError::UnknownVersion(version));
        }
        let incoming = r.ids()?;
        let outgoing = r.ids()?;
        let learners = r.ids()?;
        let auto_promote = r.ids()?;
        let removed = r.ids()?;
        let count = r.u32()?;
        let mut addresses = BTreeMap::new();
        for _ in 0..count {
            let id = NodeId(r.u64()?);
            let len = r.u32()? as usize;
            let raw = r.take(len)?;
            let address = String::from_utf8(raw.to_vec())
                .map_err(|_| ConfigDecodeError::AddressNotUtf8(id))?;
            addresses.insert(id, address);
        }
        let next_id = NodeId(r.u64()?);
        if !r.0.is_empty() {
            return Err(ConfigDecodeError::TrailingBytes(r.0.len()));
        }
        if incoming.is_empty() {
            return Err(ConfigDecodeError::Inconsistent("no voters".into()));
        }
        if let Some(both) = learners.iter().find(|l| incoming.contains(l) || outgoing.contains(l)) {
            return Err(ConfigDecodeError::Inconsistent(format!(
                "{both} is both a voter and a learner"
            )));
        }
        let config = ClusterConfig {
            membership: Membership::joint(incoming, outgoing, learners),
            addresses,
            auto_promote,
            removed,
            next_id,
        };
        config.validate().map_err(ConfigDecodeError::Inconsistent)?;
        Ok(config)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ConfigDecodeError> {
        if self.0.len() < n {
            return Err(ConfigDecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, ConfigDecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, ConfigDecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, ConfigDecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    /// A count, then that many ids; the count is checked against the bytes left first.
    fn ids(&mut self) -> Result<BTreeSet<NodeId>, ConfigDecodeError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(8) > self.0.len() {
            return Err(ConfigDecodeError::Truncated);
        }
        (0..count).map(|_| self.u64().map(NodeId)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ClusterConfig {
        let mut c = ClusterConfig::bootstrap([NodeId(1), NodeId(2), NodeId(3)]);
        c.membership = Membership::joint([NodeId(1), NodeId(2)], [], [NodeId(4)]);
        c.addresses.insert(NodeId(1), "10.0.0.1:7000".into());
        c.addresses.insert(NodeId(4), "[::1]:7004".into());
        c.auto_promote.insert(NodeId(4));
        c.removed.insert(NodeId(3));
        c.next_id = NodeId(5);
        c
    }

    #[test]
    fn round_trips() {
        let c = sample();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.encoded_len(), c.encode().len());
        assert_eq!(ClusterConfig::decode(&c.encode()), Ok(c));
        let bare = ClusterConfig::bootstrap([NodeId(1)]);
        assert_eq!(bare.encoded_len(), bare.encode().len());
    }

    #[test]
    fn bootstrap_hands_out_ids_after_the_voters() {
        let c = ClusterConfig::bootstrap([NodeId(3), NodeId(1)]);
        assert_eq!(c.next_id, NodeId(4));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn refuses_inconsistent_configurations() {
        let mut c = sample();
        c.removed.insert(NodeId(2));
        assert!(matches!(
            ClusterConfig::decode(&c.encode()),
            Err(ConfigDecodeError::Inconsistent(_))
        ));
        let mut c = sample();
        c.next_id = NodeId(4);
        assert!(ClusterConfig::decode(&c.encode()).is_err());
        let mut bytes = sample().encode().to_vec();
        bytes[0] = 9;
        assert_eq!(ClusterConfig::decode(&bytes), Err(ConfigDecodeError::UnknownVersion(9)));
        bytes = sample().encode().to_vec();
        bytes.push(0);
        assert_eq!(ClusterConfig::decode(&bytes), Err(ConfigDecodeError::TrailingBytes(1)));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = ClusterConfig::decode(&bytes);
        }

        #[test]
        fn every_prefix_of_a_valid_encoding_is_refused(cut in 0usize..200) {
            let bytes = sample().encode();
            if cut < bytes.len() {
                prop_assert!(ClusterConfig::decode(&bytes[..cut]).is_err());
            }
        }
    }
}
