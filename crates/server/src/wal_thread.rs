//! The WAL thread: owns the write-ahead log and does the blocking IO, so the node task never
//! waits on a disk. It takes every [`Write`] queued since its last fsync and writes them as one
//! append followed by one fsync (group commit: the writes pile up while the disk is busy, with
//! no timer), then reports the last of them durable. After the report, off the critical path, it
//! prepares zero-filled space for the next writes (`WalStorage::preallocate`), so that their
//! fsyncs change no file size. A write, fsync or preallocation error ends the thread with the
//! error: the WAL is poisoned and the node must stop (an fsync is never retried).

use std::sync::mpsc;
use std::thread;

use kvraft_raft::{ReadyNumber, Storage};
use kvraft_replica::Write;
use kvraft_storage::{FileDisk, WalError, WalStorage};
use tokio::sync::mpsc::UnboundedSender;

/// Every write up to the one numbered `through` is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalDone {
    pub through: ReadyNumber,
    /// What the storage holds now (the snapshot policy reads it).
    pub raft_state_size: usize,
}

/// Upper bound on the writes in one group, so that one fsync never waits for an unbounded
/// amount of data.
const MAX_WRITES_PER_GROUP: usize = 1024;

/// The handle the node keeps: submit writes; dropping it stops the thread after its current
/// write.
#[derive(Debug)]
pub struct WalThread {
    writes: mpsc::Sender<Write>,
    thread: thread::JoinHandle<()>,
}

impl WalThread {
    /// Moves `wal` to a new thread. Completions (or the error that stopped it) arrive on
    /// `done`.
    pub fn spawn(
        mut wal: WalStorage<FileDisk>,
        done: UnboundedSender<Result<WalDone, WalError>>,
    ) -> std::io::Result<WalThread> {
        let (writes, queue) = mpsc::channel::<Write>();
        let thread = thread::Builder::new().name("kvraft-wal".into()).spawn(move || {
            // The segment recovery left may have no prepared space yet.
            if let Err(e) = wal.preallocate() {
                let _ = done.send(Err(e));
                return;
            }
            while let Ok(first) = queue.recv() {
                let mut group = vec![first];
                while group.len() < MAX_WRITES_PER_GROUP {
                    match queue.try_recv() {
                        Ok(write) => group.push(write),
                        Err(_) => break,
                    }
                }
                let batches: Vec<_> = group.iter().flat_map(Write::persist_batches).collect();
                let result = wal.write_batches(&batches).and_then(|()| wal.sync());
                let through = group.last().expect("a group has a write").through;
                let report =
                    result.map(|()| WalDone { through, raft_state_size: wal.raft_state_size() });
                let failed = report.is_err();
                if done.send(report).is_err() || failed {
                    return;
                }
                // The write is acknowledged; zero-fill for the next ones while nothing waits.
                if let Err(e) = wal.preallocate() {
                    let _ = done.send(Err(e));
                    return;
                }
            }
        })?;
        Ok(WalThread { writes, thread })
    }

    /// Hands the thread a write; false if the thread has stopped (after an error, already
    /// reported).
    pub fn submit(&self, write: Write) -> bool {
        self.writes.send(write).is_ok()
    }

    /// Stops the thread once the writes already handed over are done, and waits for it.
    pub fn stop(self) {
        let WalThread { writes, thread } = self;
        drop(writes); // the thread's `recv` fails once the queue is drained
        let _ = thread.join();
    }
}
