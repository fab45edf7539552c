//! The in-memory view of one peer's log: the latest snapshot plus the entries after it, with
//! the commit, apply and persistence watermarks, and the configurations the log holds (the
//! peer's configuration is the latest of them: see [`RaftLog::config`]).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::cluster_config::{ClusterConfig, ConfigState};
use crate::message::{Entry, EntryKind, Snapshot, SnapshotMeta};
use crate::types::{LogIndex, Term};

/// Invariants (checked by `check_invariants`):
/// `snapshot.index <= applied <= committed <= last_index`, entries are contiguous from
/// `snapshot.index + 1` with non-decreasing terms not below the snapshot's term,
/// `persisted <= last_index` and `unstable_from <= last_index + 1`.
#[derive(Debug)]
pub struct RaftLog {
    snapshot: Snapshot,
    entries: VecDeque<Entry>,
    committed: LogIndex,
    /// Highest index handed to the application (in a `Ready`).
    applied: LogIndex,
    /// First index not yet handed to storage.
    unstable_from: LogIndex,
    /// Highest index known durable in this log (the leader counts itself with it).
    persisted: LogIndex,
    /// The configurations carried by the retained config entries, oldest first. Derived from
    /// `entries` (checked by `check_invariants`): kept so that the current configuration is
    /// found without a scan, and reverts by itself when the entries carrying it are cut.
    configs: Vec<ConfigState>,
}

/// The configuration a config entry carries. Config entries reach the log only well-formed
/// (the leader encodes them; the wire and the WAL check them on the way in).
fn config_of(entry: &Entry) -> Option<ConfigState> {
    (entry.kind == EntryKind::Config).then(|| {
        let config = ClusterConfig::decode(&entry.data).unwrap_or_else(|e| {
            panic!("config entry {} is malformed ({e}): input checks let it through", entry.index)
        });
        ConfigState { index: entry.index, config }
    })
}

impl RaftLog {
    /// A log restored from storage: a snapshot, the entries after it, and the known commit.
    pub fn restore(snapshot: Snapshot, entries: Vec<Entry>, commit: LogIndex) -> RaftLog {
        let mut expected = snapshot.meta.index.next();
        for e in &entries {
            assert_eq!(
                e.index, expected,
                "recovered entries must follow the snapshot contiguously"
            );
            expected = expected.next();
        }
        let last = snapshot.meta.index.plus(entries.len() as u64);
        // The commit may have been persisted ahead of this peer's own entries (the leader may
        // commit through its followers before its own write is durable): clamp it.
        let committed = commit.min(last).max(snapshot.meta.index);
        let applied = snapshot.meta.index;
        let configs = entries.iter().filter_map(config_of).collect();
        RaftLog {
            snapshot,
            entries: entries.into(),
            committed,
            applied,
            unstable_from: last.next(),
            persisted: last,
            configs,
        }
    }

    /// A peer that found no configuration in its storage starts from `config` (the bootstrap
    /// configuration every initial member is given alike), as if a snapshot at index 0 held it:
    /// index 1 stays the first command. Ignored if the storage held one; true if taken.
    pub fn bootstrap_config(&mut self, config: ClusterConfig) -> bool {
        if !self.snapshot.config.is_unknown() {
            return false;
        }
        self.snapshot.config = ConfigState { index: LogIndex::ZERO, config };
        true
    }

    /// The configuration in effect on this peer: the latest config entry in the log, else the
    /// snapshot's (thesis 4.1: a configuration takes effect when appended, committed or not).
    pub fn config(&self) -> &ConfigState {
        self.configs.last().unwrap_or(&self.snapshot.config)
    }

    /// The voters and learners of the configuration in effect.
    pub fn membership(&self) -> &crate::membership::Membership {
        &self.config().config.membership
    }

    /// The latest configuration at or below the commit index: it can no longer be cut.
    pub fn committed_config(&self) -> &ConfigState {
        self.config_at(self.committed)
    }

    /// The latest configuration at or below `index` (at least the snapshot's).
    pub fn config_at(&self, index: LogIndex) -> &ConfigState {
        self.configs.iter().rev().find(|c| c.index <= index).unwrap_or(&self.snapshot.config)
    }

    /// The configurations of the retained config entries, oldest first.
    pub fn config_entries(&self) -> &[ConfigState] {
        &self.configs
    }

    /// The latest snapshot: the compacted prefix of the log.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The index and term the snapshot covers.
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot.meta
    }

    /// The index of the first retained entry (the one after the snapshot), even if no entry is
    /// retained.
    pub fn first_index(&self) -> LogIndex {
        self.snapshot.meta.index.next()
    }

    /// The index of the last entry, or the snapshot's index when no entry is retained.
    pub fn last_index(&self) -> LogIndex {
        self.snapshot.meta.index.plus(self.entries.len() as u64)
    }

    /// The term of the last entry, or the snapshot's term when no entry is retained.
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot.meta.term, |e| e.term)
    }

    /// The highest index known to be committed.
    pub fn committed(&self) -> LogIndex {
        self.committed
    }

    /// The last committed index handed out in a Ready (see `RawNode::applied_index`).
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// The last index storage reported durable: what a leader may count for itself in a commit
    /// quorum.
    pub fn persisted(&self) -> LogIndex {
        self.persisted
    }

    /// The term of the entry at `index`; `None` if it is compacted away or beyond the end.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.meta.index {
            return Some(self.snapshot.meta.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`; `None` if it is compacted away or beyond the end.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index < self.first_index() {
            return None;
        }
        self.entries.get((index.0 - self.first_index().0) as usize)
    }

    /// True if the log holds an entry (or the snapshot's last one) at `index` with term `term`: the
    /// AppendEntries consistency check.
    pub fn matches(&self, index: LogIndex, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// The retained entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Entries from `from` on, at most `max_bytes` of data but always at least one if any.
    pub fn entries_from(&self, from: LogIndex, max_bytes: usize) -> Vec<Entry> {
        assert!(from >= self.first_index(), "entries_from({from}) below first index");
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut index = from;
        while let Some(e) = self.entry(index) {
            bytes += e.data.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(e.clone());
            index = index.next();
        }
        out
    }

    /// The leader appends a new entry of its own term.
    pub fn append_new(&mut self, term: Term, kind: EntryKind, data: Bytes) -> LogIndex {
        assert!(term >= self.last_term(), "leader term {term} below last log term");
        let index = self.last_index().next();
        self.push(Entry { term, index, kind, data });
        index
    }

    fn push(&mut self, entry: Entry) {
        if let Some(config) = config_of(&entry) {
            self.configs.push(config);
        }
        self.entries.push_back(entry);
    }

    /// AppendEntries on a follower: if the log holds `(prev_index, prev_term)`, merge `entries`
    /// after it, truncating from the first conflicting entry, and return the index of the last
    /// entry the message covers. `None` if the log lacks the previous entry.
    pub fn try_append(
        &mut self,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Vec<Entry>,
    ) -> Option<LogIndex> {
        if !self.matches(prev_index, prev_term) {
            return None;
        }
        let last_new = prev_index.plus(entries.len() as u64);
        let mut new = entries.into_iter().peekable();
        while let Some(e) = new.peek() {
            match self.term(e.index) {
                Some(t) if t == e.term => {
                    new.next();
                }
                _ => break,
            }
        }
        if let Some(first) = new.peek() {
            self.truncate_from(first.index);
            for e in new {
                assert_eq!(e.index, self.last_index().next(), "AppendEntries with a gap");
                self.push(e);
            }
        }
        Some(last_new)
    }

    /// Removes entries at `index` and after (a conflicting suffix). Committed entries never go.
    fn truncate_from(&mut self, index: LogIndex) {
        assert!(
            index > self.committed,
            "truncating at {index} would remove committed entries (commit {})",
            self.committed
        );
        let keep = (index.0 - self.first_index().0) as usize;
        self.entries.truncate(keep);
        // The configurations those entries carried go with them: the peer reverts to the
        // latest one that remains (thesis 4.1).
        self.configs.retain(|c| c.index < index);
        self.unstable_from = self.unstable_from.min(index);
        self.persisted = self.persisted.min(index.prev());
    }

    /// The last index at or below `index` whose term is at most `term` (or the first position
    /// whose term is unknown). Used on both sides of the fast conflict back-up.
    pub fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> LogIndex {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                Some(t) if t > term && i > LogIndex::ZERO => i = i.prev(),
                _ => return i,
            }
        }
    }

    /// Raises the commit index to `index`; false if it was already there or beyond. Panics if
    /// `index` is past the last entry: only held entries can be committed.
    pub fn commit_to(&mut self, index: LogIndex) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(
            index <= self.last_index(),
            "commit {index} beyond last index {}",
            self.last_index()
        );
        self.committed = index;
        true
    }

    /// Committed entries not yet handed out, marking them handed out.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        if self.applied >= self.committed {
            return Vec::new();
        }
        let from = self.applied.next();
        let out: Vec<Entry> = (from.0..=self.committed.0)
            .map(|i| self.entry(LogIndex(i)).expect("committed entry retained").clone())
            .collect();
        self.applied = self.committed;
        out
    }

    /// True if committed entries wait to be handed out in a Ready.
    pub fn has_committed_to_hand_out(&self) -> bool {
        self.applied < self.committed
    }

    /// Entries not yet handed to storage, marking them handed out.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        // Entries are contiguous, so the unstable ones are a suffix: no scan of the whole log.
        let skip = self.unstable_from.0.saturating_sub(self.first_index().0) as usize;
        let out: Vec<Entry> = self.entries.iter().skip(skip).cloned().collect();
        self.unstable_from = self.last_index().next();
        out
    }

    /// True if entries wait to be handed to storage in a Ready.
    pub fn has_unstable(&self) -> bool {
        self.unstable_from <= self.last_index()
    }

    /// Storage reports entries up to `(index, term)` durable.
    pub fn mark_persisted(&mut self, index: LogIndex, term: Term) {
        if self.matches(index, term) && index > self.persisted {
            self.persisted = index;
        }
    }

    /// The service snapshotted its state at `index` (already applied): drop the prefix.
    pub fn compact(&mut self, index: LogIndex, data: Bytes) -> Snapshot {
        assert!(index <= self.applied, "snapshot at {index} beyond applied {}", self.applied);
        assert!(index > self.snapshot.meta.index, "snapshot at {index} is not newer");
        let term = self.term(index).expect("applied entry retained");
        let config = self.config_at(index).clone();
        let drop = (index.0 - self.snapshot.meta.index.0) as usize;
        self.entries.drain(..drop);
        self.configs.retain(|c| c.index > index);
        self.snapshot = Snapshot { meta: SnapshotMeta { index, term }, config, data };
        self.snapshot.clone()
    }

    /// A snapshot received from the leader replaces the state up to its index. Entries after it
    /// survive only if the log holds the snapshot's last entry (Raft paper, InstallSnapshot rule 6).
    pub fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.meta;
        assert!(meta.index > self.committed, "installing a snapshot that is not ahead of commit");
        if self.matches(meta.index, meta.term) {
            let drop = (meta.index.0 - self.snapshot.meta.index.0) as usize;
            self.entries.drain(..drop);
            self.configs.retain(|c| c.index > meta.index);
            self.unstable_from = self.unstable_from.max(meta.index.next());
            self.persisted = self.persisted.max(meta.index);
        } else {
            self.entries.clear();
            self.configs.clear();
            self.unstable_from = meta.index.next();
            self.persisted = meta.index;
        }
        self.snapshot = snapshot;
        self.committed = meta.index;
        self.applied = meta.index;
    }

    /// Panics with context if a structural invariant is broken.
    pub fn check_invariants(&self) {
        let s = self.snapshot.meta;
        assert!(s.index <= self.applied, "snapshot {} > applied {}", s.index, self.applied);
        assert!(
            self.applied <= self.committed,
            "applied {} > committed {}",
            self.applied,
            self.committed
        );
        assert!(
            self.committed <= self.last_index(),
            "committed {} > last {}",
            self.committed,
            self.last_index()
        );
        assert!(self.persisted <= self.last_index(), "persisted {} > last", self.persisted);
        assert!(self.unstable_from <= self.last_index().next(), "unstable_from beyond end");
        if let (Some(first), Some(last)) = (self.entries.front(), self.entries.back()) {
            assert_eq!(first.index, s.index.next(), "first entry does not follow the snapshot");
            assert_eq!(last.index, self.last_index(), "entries not contiguous");
            assert!(first.term >= s.term && last.term >= first.term, "log terms decrease");
        }
        // The cached configurations are exactly those the entries carry (invariant I5 of the
        // membership design: a revert on truncation cannot be missed).
        let recomputed: Vec<ConfigState> = self.entries.iter().filter_map(config_of).collect();
        assert!(recomputed == self.configs, "cached configurations differ from the log's");
        assert!(
            self.snapshot.config.index <= s.index,
            "the snapshot's configuration {} is beyond the snapshot {}",
            self.snapshot.config.index,
            s.index
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry::normal(Term(term), LogIndex(index), Bytes::from(format!("{index}@{term}")))
    }

    fn log_with(terms: &[u64]) -> RaftLog {
        let entries = terms.iter().enumerate().map(|(i, t)| entry(i as u64 + 1, *t)).collect();
        RaftLog::restore(Snapshot::default(), entries, LogIndex(0))
    }

    fn terms(log: &RaftLog) -> Vec<u64> {
        log.entries().map(|e| e.term.0).collect()
    }

    #[test]
    fn append_truncates_only_from_the_first_conflict() {
        let mut log = log_with(&[1, 1, 2, 2]);
        // Duplicate of what we hold: nothing changes, nothing truncated.
        assert_eq!(
            log.try_append(LogIndex(1), Term(1), vec![entry(2, 1), entry(3, 2)]),
            Some(LogIndex(3))
        );
        assert_eq!(terms(&log), vec![1, 1, 2, 2]);
        // Conflict at 3: the suffix from 3 is replaced.
        assert_eq!(log.try_append(LogIndex(2), Term(1), vec![entry(3, 3)]), Some(LogIndex(3)));
        assert_eq!(terms(&log), vec![1, 1, 3]);
        // Missing previous entry.
        assert_eq!(log.try_append(LogIndex(5), Term(3), vec![]), None);
        assert_eq!(log.try_append(LogIndex(3), Term(2), vec![]), None);
    }

    #[test]
    fn conflict_search_skips_whole_terms() {
        let log = log_with(&[1, 1, 2, 2, 2, 5, 5]);
        assert_eq!(log.find_conflict_by_term(LogIndex(7), Term(4)), LogIndex(5));
        assert_eq!(log.find_conflict_by_term(LogIndex(7), Term(1)), LogIndex(2));
        assert_eq!(log.find_conflict_by_term(LogIndex(7), Term(0)), LogIndex(0));
        assert_eq!(log.find_conflict_by_term(LogIndex(99), Term(9)), LogIndex(7));
    }

    #[test]
    fn compaction_and_installation_keep_the_suffix_only_when_it_matches() {
        let mut log = log_with(&[1, 1, 2, 2]);
        log.commit_to(LogIndex(3));
        assert_eq!(log.take_committed().len(), 3);
        log.compact(LogIndex(2), Bytes::from_static(b"s"));
        assert_eq!(log.first_index(), LogIndex(3));
        assert_eq!(log.term(LogIndex(2)), Some(Term(1)));
        assert_eq!(log.term(LogIndex(1)), None);
        log.check_invariants();

        let mut keep = log_with(&[1, 1, 2, 2]);
        keep.install_snapshot(Snapshot {
            meta: SnapshotMeta { index: LogIndex(3), term: Term(2) },
            config: ConfigState::default(),
            data: Bytes::new(),
        });
        assert_eq!(terms(&keep), vec![2]);
        keep.check_invariants();

        let mut drop = log_with(&[1, 1, 2, 2]);
        drop.install_snapshot(Snapshot {
            meta: SnapshotMeta { index: LogIndex(3), term: Term(3) },
            config: ConfigState::default(),
            data: Bytes::new(),
        });
        assert_eq!(terms(&drop), Vec::<u64>::new());
        assert_eq!(drop.last_index(), LogIndex(3));
        drop.check_invariants();
    }

    #[test]
    #[should_panic(expected = "would remove committed entries")]
    fn never_truncates_committed_entries() {
        let mut log = log_with(&[1, 1, 2]);
        log.commit_to(LogIndex(3));
        log.try_append(LogIndex(1), Term(1), vec![entry(2, 4)]);
    }
}
