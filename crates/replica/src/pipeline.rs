//! The Ready pipeline: the one place that carries a Raft peer's `Ready`s to the disk, the
//! network and the state machine in the order Raft's safety needs (see `kvraft_raft::Ready`).
//!
//! Every driver runs this code: the server (a WAL thread behind it) and the simulator (a
//! simulated disk behind it), so the ordering rules are written once and simulated. What a
//! driver does is only IO, told by [`Output`]s:
//! - [`Output::Send`]: messages to hand to the network (which may lose them);
//! - [`Output::Write`]: one group write to make durable (one append, one fsync), then report
//!   it with `on_written(write.through, raft_state_size)`;
//! - [`Output::Reply`]: a client request's answer (from the replica, not from this module).
//!
//! The rules it keeps:
//! 1. A Ready's `messages` go out at once: they never promise unpersisted state, so the leader
//!    replicates while its own fsync runs (Raft thesis 10.2.1).
//! 2. At most one group write is in flight. While it is, new Readies wait; when it completes,
//!    every Ready queued meanwhile forms the next group: group commit falls out of the disk's
//!    own latency, with no timer.
//! 3. A Ready is finished only once its write *and every earlier one* is durable, in order:
//!    `RawNode::on_persisted`, then its `persisted_messages` (votes and acknowledgements that
//!    promise the write) are sent, except acknowledgements the peer's move to a later term
//!    voided (`RawNode::promise_holds`), then the application applies its snapshot and
//!    committed entries. A Ready with nothing to write still waits behind the writes before it.
//! 4. The next group's write starts before the finished group's entries are applied, so
//!    applying never delays the disk.

use std::collections::VecDeque;

use kvraft_kv::Reply;
use kvraft_raft::{Entry, HardState, Message, PersistBatch, RawNode, Ready, Snapshot};

use crate::RequestId;

/// What a driver must do next; see the module docs.
#[derive(Debug)]
pub enum Output {
    /// Hand these messages to the network.
    Send(Vec<Message>),
    /// Make this group durable, then call `on_written(write.through, raft_state_size)`.
    Write(Write),
    /// Answer the client request the driver submitted as `RequestId`.
    Reply(RequestId, Reply),
}

/// One group write: the durable parts of consecutive Readies, to be written in order as one
/// append and made durable by one fsync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The number of the group's last Ready: what `on_written` reports back.
    pub through: u64,
    /// The non-empty durable parts, oldest first.
    pub batches: Vec<DurableBatch>,
}

/// The durable part of one Ready, owned (it crosses to a WAL thread, or waits in a simulated
/// disk's write queue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableBatch {
    /// The hard state to store, if it changed.
    pub hard_state: Option<HardState>,
    /// A snapshot to store, replacing the stored one.
    pub snapshot: Option<Snapshot>,
    /// Entries to store, replacing any stored entry at or after the first of them.
    pub entries: Vec<Entry>,
}

impl DurableBatch {
    /// The batch as storage takes it.
    pub fn as_persist_batch(&self) -> PersistBatch<'_> {
        PersistBatch {
            hard_state: self.hard_state,
            snapshot: self.snapshot.as_ref(),
            entries: &self.entries,
        }
    }
}

impl Write {
    /// The batches as storage takes them (`Storage::persist`, `WalStorage::write_batches`).
    pub fn persist_batches(&self) -> Vec<PersistBatch<'_>> {
        self.batches.iter().map(DurableBatch::as_persist_batch).collect()
    }
}

/// What sits on top of the Raft peer: it sees each Ready twice, when it is taken and once it
/// is durable.
pub trait Apply {
    /// A Ready was just taken: take from it what needs no disk (confirmed and failed reads).
    fn on_ready(&mut self, raft: &RawNode, ready: &mut Ready);
    /// The Ready's write (and every earlier one) is durable: apply its snapshot and committed
    /// entries. `raft_state_size` is what storage held after the last write; the application
    /// may snapshot (`RawNode::snapshot`), which the pipeline then carries to the disk.
    fn apply(&mut self, raft: &mut RawNode, ready: Ready, raft_state_size: usize);
}

/// The pipeline's state: Readies waiting for the disk, the write in flight, and the outputs
/// not yet taken by the driver.
#[derive(Debug, Default)]
pub struct ReadyPipeline {
    /// Readies whose write has not completed, oldest first, with whether each had anything to
    /// write. The first `writing` of them are the group in flight.
    waiting: VecDeque<(bool, Ready)>,
    writing: usize,
    /// The `through` of the group in flight, once the driver reported it durable.
    written: Option<u64>,
    raft_state_size: usize,
    outbox: VecDeque<Output>,
}

impl ReadyPipeline {
    /// A pipeline whose storage holds `raft_state_size` bytes (hard state plus retained
    /// entries) at the start.
    pub fn new(raft_state_size: usize) -> ReadyPipeline {
        ReadyPipeline { raft_state_size, ..ReadyPipeline::default() }
    }

    /// The group in flight is durable (`through` is the number its `Write` carried), and
    /// storage now holds `raft_state_size` bytes. Its Readies finish at the next `drive`.
    pub fn on_written(&mut self, through: u64, raft_state_size: usize) {
        let in_flight = self.in_flight_through();
        assert_eq!(
            in_flight,
            Some(through),
            "on_written({through}) does not match the write in flight"
        );
        self.written = Some(through);
        self.raft_state_size = raft_state_size;
    }

    /// The next output for the driver, driving `raft` and `app` for more when none is left.
    pub fn poll(&mut self, raft: &mut RawNode, app: &mut impl Apply) -> Option<Output> {
        if self.outbox.is_empty() {
            self.drive(raft, app);
        }
        self.outbox.pop_front()
    }

    /// Queues an output the application decided (a reply) behind the pipeline's own.
    pub fn push_output(&mut self, output: Output) {
        self.outbox.push_back(output);
    }

    /// Whether a group write is in flight.
    pub fn is_writing(&self) -> bool {
        self.writing > 0
    }

    /// Readies waiting for the disk (in flight or queued behind it).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn in_flight_through(&self) -> Option<u64> {
        (self.writing > 0).then(|| self.waiting[self.writing - 1].1.number)
    }

    /// Runs the rules until nothing moves: takes every Ready, starts the next group write when
    /// the disk is free, finishes what is durable.
    fn drive(&mut self, raft: &mut RawNode, app: &mut impl Apply) {
        loop {
            while raft.has_ready() {
                self.take_ready(raft, app);
            }
            let finished = self.take_finished();
            self.start_group();
            let progressed = !finished.is_empty();
            for ready in finished {
                self.finish(raft, app, ready);
            }
            if !progressed && !raft.has_ready() {
                return;
            }
        }
    }

    fn take_ready(&mut self, raft: &mut RawNode, app: &mut impl Apply) {
        let mut ready = raft.ready();
        app.on_ready(raft, &mut ready);
        let messages = std::mem::take(&mut ready.messages);
        // Planted bug: the votes and acknowledgements that promise this Ready's write go out
        // before it is durable, so a crash can break the promise.
        #[cfg(feature = "bug-send-before-durable")]
        let messages = [messages, std::mem::take(&mut ready.persisted_messages)].concat();
        if !messages.is_empty() {
            self.outbox.push_back(Output::Send(messages));
        }
        let must_persist = ready.must_persist();
        self.waiting.push_back((must_persist, ready));
    }

    /// The Readies that may finish now, in order: the group just written, then any Readies
    /// with nothing to write that are no longer behind a write.
    fn take_finished(&mut self) -> Vec<Ready> {
        let mut finished = Vec::new();
        if let Some(through) = self.written.take() {
            debug_assert_eq!(self.in_flight_through(), Some(through));
            finished.extend(self.waiting.drain(..self.writing).map(|(_, ready)| ready));
            self.writing = 0;
        }
        if self.writing == 0 {
            while self.waiting.front().is_some_and(|(must_persist, _)| !must_persist) {
                finished.push(self.waiting.pop_front().expect("front exists").1);
            }
        }
        finished
    }

    /// With the disk free, every queued Ready joins one group write.
    fn start_group(&mut self) {
        if self.writing > 0 || self.waiting.is_empty() {
            return;
        }
        self.writing = self.waiting.len();
        let through = self.waiting[self.writing - 1].1.number;
        let batches = self
            .waiting
            .iter_mut()
            .filter(|(must_persist, _)| *must_persist)
            .map(|(_, ready)| DurableBatch {
                hard_state: ready.hard_state.take(),
                snapshot: ready.snapshot.take(),
                entries: std::mem::take(&mut ready.entries),
            })
            .collect();
        self.outbox.push_back(Output::Write(Write { through, batches }));
    }

    /// A Ready whose write is durable: Raft learns it, the promises go out, the application
    /// applies.
    fn finish(&mut self, raft: &mut RawNode, app: &mut impl Apply, mut ready: Ready) {
        raft.on_persisted(ready.number);
        let mut promises = std::mem::take(&mut ready.persisted_messages);
        // An acknowledgement made in an earlier term may speak for entries that a later
        // leader's entries replaced in this very write (`RawNode::promise_holds`).
        promises.retain(|m| raft.promise_holds(m));
        if !promises.is_empty() {
            self.outbox.push_back(Output::Send(promises));
        }
        app.apply(raft, ready, self.raft_state_size);
    }
}
