//! `Ready`: everything a driver must do after feeding the node input.

use crate::message::{Entry, HardState, Message, Snapshot};
use crate::types::{LogIndex, ReadyNumber};

/// The work a `RawNode` hands its driver, in this order:
/// 1. send `messages` (they never depend on unpersisted state);
/// 2. durably write `hard_state`, `snapshot` and `entries` (see [`PersistBatch`]); once this
///    write and every earlier Ready's are durable, call `RawNode::on_persisted(number)`;
/// 3. only then send `persisted_messages` (votes and acknowledgements that promise the write),
///    each that `RawNode::promise_holds` still accepts: an acknowledgement made before the
///    peer moved to a later term may speak for entries that this very write replaced.
///    A Ready with nothing to write may still carry them while earlier writes are in flight;
///    they wait for those;
/// 4. restore the state machine from `apply_snapshot`, if any, then apply `committed_entries`
///    in order;
/// 5. serve each read of `read_states` once the state machine has applied its index (this
///    needs no disk write: it may happen before the write above is durable), and fail each
///    read of `failed_reads` (the client should retry, perhaps elsewhere).
///
/// The persist-before-send rule lives in the types: a message that promises durable state is
/// only ever found in `persisted_messages`.
#[derive(Debug, Default)]
pub struct Ready {
    /// Identifies this Ready to `on_persisted`.
    pub number: ReadyNumber,
    /// Present when the term or vote changed, or (with the latest commit index) alongside
    /// entries or a snapshot. An advance of the commit index alone is never written: it is
    /// volatile, and writing it would cost an fsync per commit.
    pub hard_state: Option<HardState>,
    /// A snapshot to persist; storage drops the log prefix it covers.
    pub snapshot: Option<Snapshot>,
    /// Entries to append; any stored entry at or after `entries[0].index` is replaced.
    pub entries: Vec<Entry>,
    /// Messages to send now: none of them promises unpersisted state.
    pub messages: Vec<Message>,
    /// Messages to send only once this Ready's write, and every earlier one, is durable (votes and
    /// acknowledgements).
    pub persisted_messages: Vec<Message>,
    /// A snapshot received from the leader: the state machine restarts from it.
    pub apply_snapshot: Option<Snapshot>,
    /// Entries now committed, to apply in order.
    pub committed_entries: Vec<Entry>,
    /// Linearizable reads confirmed by ReadIndex (on the leader, or forwarded by a follower).
    pub read_states: Vec<ReadState>,
    /// The contexts of reads that `read_index` accepted but that can no longer be confirmed
    /// here: leadership or the term changed, the leader refused, or a forwarded read got no
    /// answer within an election timeout. Every accepted read ends up exactly once in
    /// `read_states` or here.
    pub failed_reads: Vec<u64>,
}

/// A confirmed read: serve the read `ctx` once the state machine has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The read's context, as given to `read_index`.
    pub ctx: u64,
    /// The read index: serve the read once this much is applied.
    pub index: LogIndex,
}

/// The durable part of a `Ready`, as storage sees it.
#[derive(Clone, Copy, Debug)]
pub struct PersistBatch<'a> {
    /// The hard state to store, if it changed.
    pub hard_state: Option<HardState>,
    /// A snapshot to store, replacing the stored one.
    pub snapshot: Option<&'a Snapshot>,
    /// Entries to store, replacing any stored entry at or after the first of them.
    pub entries: &'a [Entry],
}

impl Ready {
    /// The part of this Ready that storage must make durable.
    pub fn persist_batch(&self) -> PersistBatch<'_> {
        PersistBatch {
            hard_state: self.hard_state,
            snapshot: self.snapshot.as_ref(),
            entries: &self.entries,
        }
    }

    /// True if something must be made durable before `persisted_messages` may be sent.
    pub fn must_persist(&self) -> bool {
        self.hard_state.is_some() || self.snapshot.is_some() || !self.entries.is_empty()
    }
}

impl PersistBatch<'_> {
    /// True if the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none() && self.snapshot.is_none() && self.entries.is_empty()
    }
}
