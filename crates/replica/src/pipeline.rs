//! The Ready pipeline: the one place that carries a Raft peer's `Ready`s to the disk, the
//! network and the state machine in the order Raft's safety needs (see `kvraft_raft::Ready`).
//!
//! Every driver runs this code: the server (a WAL thread behind it) and the simulator (a
//! simulated disk behind it), so the ordering rules are written once and simulated. What a
//! driver does is only IO, told by [`Output`]s:
//! - [`Output::Send`]: messages to hand to the network (which may lose them);
//! - [`Output::Write`]: durable parts of Readies to write, in order after every earlier write;
//!   once writes are durable, report the last of them with `on_written(write.through,
//!   raft_state_size)`;
//! - [`Output::Reply`]: a client request's answer (from the replica, not from this module).
//!
//! The rules it keeps:
//! 1. A Ready's `messages` go out at once: they never promise unpersisted state, so the leader
//!    replicates while its own fsync runs (Raft thesis 10.2.1).
//! 2. A Ready's durable part is handed out as soon as the Ready is taken (the Readies of one
//!    round of input share one `Write`). The storage makes writes durable in the order it got
//!    them and may cover several with one fsync: the server's WAL thread and the simulator's
//!    disk both take every write queued while the last fsync ran (group commit, without a
//!    timer, and without a round trip through the pipeline between two fsyncs).
//! 3. A Ready is finished only once its write *and every earlier one* is durable, in order:
//!    `RawNode::on_persisted`, then its `persisted_messages` (votes and acknowledgements that
//!    promise the write) are sent, except acknowledgements the peer's move to a later term
//!    voided (`RawNode::promise_holds`), then the application applies its snapshot and
//!    committed entries. A Ready with nothing to write still waits behind the writes before it.

use std::collections::VecDeque;

use kvraft_kv::Reply;
use kvraft_raft::{Entry, HardState, Message, PersistBatch, RawNode, Ready, ReadyNumber, Snapshot};

use crate::admin::AdminReply;
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
    /// Answer the administration request the driver submitted as `RequestId`.
    Admin(RequestId, AdminReply),
}

/// The durable parts of consecutive Readies, to be written in order after every earlier
/// write (one append may carry several writes, and one fsync make them all durable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The number of the last Ready it carries: what `on_written` reports back once it (and
    /// so every earlier write) is durable.
    pub through: ReadyNumber,
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

/// The pipeline's state: Readies waiting for the disk, the writes handed out and not yet
/// reported durable, and the outputs not yet taken by the driver.
#[derive(Debug, Default)]
pub struct ReadyPipeline {
    /// Readies not finished yet, oldest first, with whether each had anything to write.
    waiting: VecDeque<(bool, Ready)>,
    /// The `through` of every write handed out and not yet reported durable, oldest first.
    unreported: VecDeque<ReadyNumber>,
    /// Every Ready up to this number is durable.
    durable_through: ReadyNumber,
    raft_state_size: usize,
    outbox: VecDeque<Output>,
}

impl ReadyPipeline {
    /// A pipeline whose storage holds `raft_state_size` bytes (hard state plus retained
    /// entries) at the start.
    pub fn new(raft_state_size: usize) -> ReadyPipeline {
        ReadyPipeline { raft_state_size, ..ReadyPipeline::default() }
    }

    /// Every write handed out up to the one with this `through` is durable, and storage now
    /// holds `raft_state_size` bytes. Their Readies finish at the next `poll`.
    pub fn on_written(&mut self, through: ReadyNumber, raft_state_size: usize) {
        assert!(
            self.unreported.contains(&through),
            "on_written({through}) names no write in flight (in flight: {:?})",
            self.unreported
        );
        while self.unreported.front().is_some_and(|t| *t <= through) {
            self.unreported.pop_front();
        }
        self.durable_through = through;
        self.raft_state_size = raft_state_size;
    }

    /// The next output for the driver, driving `raft` and `app` for more when none is left.
    pub fn poll(&mut self, raft: &mut RawNode, app: &mut impl Apply) -> Option<Output> {
        if self.outbox.is_empty() {
            self.drive(raft, app);
        }
        self.outbox.pop_front()
    }

    /// Writes handed out and not yet reported durable.
    pub fn writes_in_flight(&self) -> usize {
        self.unreported.len()
    }

    /// Readies waiting for the disk (their own write, or an earlier one).
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Runs the rules until nothing moves: takes every Ready, hands out their durable parts,
    /// finishes what is durable.
    fn drive(&mut self, raft: &mut RawNode, app: &mut impl Apply) {
        loop {
            let mut batches = Vec::new();
            let mut through = None;
            while raft.has_ready() {
                let (number, batch) = self.take_ready(raft, app);
                if let Some(batch) = batch {
                    batches.push(batch);
                    through = Some(number);
                }
            }
            if let Some(through) = through {
                self.unreported.push_back(through);
                self.outbox.push_back(Output::Write(Write { through, batches }));
            }
            let finished = self.take_finished();
            let progressed = !finished.is_empty();
            for ready in finished {
                self.finish(raft, app, ready);
            }
            if !progressed && !raft.has_ready() {
                return;
            }
        }
    }

    /// Takes one Ready: its messages go out, its durable part (if any) is returned for this
    /// round's write, and the rest waits for the disk.
    fn take_ready(
        &mut self,
        raft: &mut RawNode,
        app: &mut impl Apply,
    ) -> (ReadyNumber, Option<DurableBatch>) {
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
        let batch = must_persist.then(|| DurableBatch {
            hard_state: ready.hard_state.take(),
            snapshot: ready.snapshot.take(),
            entries: std::mem::take(&mut ready.entries),
        });
        let number = ready.number;
        self.waiting.push_back((must_persist, ready));
        (number, batch)
    }

    /// The Readies that may finish now, in order: those whose write is durable, and those with
    /// nothing to write that no unfinished Ready precedes.
    fn take_finished(&mut self) -> Vec<Ready> {
        let mut finished = Vec::new();
        while let Some((must_persist, ready)) = self.waiting.front() {
            if *must_persist && ready.number > self.durable_through {
                break;
            }
            finished.push(self.waiting.pop_front().expect("front exists").1);
        }
        finished
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
