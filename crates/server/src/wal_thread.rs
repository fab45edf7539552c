//! The WAL thread: owns the write-ahead log and does the blocking IO, so the node task never
//! waits on a disk. It takes every job queued since its last write and writes them as one
//! write followed by one fsync (group commit), then reports the last job number it made
//! durable. After the report, off the critical path, it prepares zero-filled space for the next
//! writes (`WalStorage::preallocate`), so that their fsyncs change no file size. A write, fsync
//! or preallocation error ends the thread with the error: the WAL is poisoned and the node must
//! stop (an fsync is never retried).

use std::sync::mpsc;
use std::thread;

use kvraft_raft::{Entry, HardState, PersistBatch, Snapshot, Storage};
use kvraft_storage::{FileDisk, WalError, WalStorage};
use tokio::sync::mpsc::UnboundedSender;

/// The durable part of one Ready, owned so it can cross to the WAL thread.
#[derive(Debug)]
pub struct WalJob {
    /// The Ready's number.
    pub number: u64,
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

impl WalJob {
    fn batch(&self) -> PersistBatch<'_> {
        PersistBatch {
            hard_state: self.hard_state,
            snapshot: self.snapshot.as_ref(),
            entries: &self.entries,
        }
    }
}

/// Jobs up to `through` are durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalDone {
    pub through: u64,
    /// What the storage holds now (the snapshot policy reads it).
    pub raft_state_size: usize,
}

/// The handle the node keeps: submit jobs; dropping it stops the thread after its current
/// write.
#[derive(Debug)]
pub struct WalThread {
    jobs: mpsc::Sender<WalJob>,
    thread: thread::JoinHandle<()>,
}

/// Upper bound on the jobs in one group write, so one fsync never waits for an unbounded
/// amount of data.
const MAX_JOBS_PER_WRITE: usize = 1024;

impl WalThread {
    /// Moves `wal` to a new thread. Completions (or the error that stopped it) arrive on
    /// `done`.
    pub fn spawn(
        mut wal: WalStorage<FileDisk>,
        done: UnboundedSender<Result<WalDone, WalError>>,
    ) -> std::io::Result<WalThread> {
        let (jobs, queue) = mpsc::channel::<WalJob>();
        let thread = thread::Builder::new().name("kvraft-wal".into()).spawn(move || {
            // The segment recovery left may have no prepared space yet.
            if let Err(e) = wal.preallocate() {
                let _ = done.send(Err(e));
                return;
            }
            while let Ok(first) = queue.recv() {
                let mut group = vec![first];
                while group.len() < MAX_JOBS_PER_WRITE {
                    match queue.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                let batches: Vec<PersistBatch<'_>> = group.iter().map(WalJob::batch).collect();
                let result = wal.write_batches(&batches).and_then(|()| wal.sync());
                let through = group.last().expect("a group has a job").number;
                let report =
                    result.map(|()| WalDone { through, raft_state_size: wal.raft_state_size() });
                let failed = report.is_err();
                if done.send(report).is_err() || failed {
                    return;
                }
                // The group is acknowledged; zero-fill for the next ones while nothing waits.
                if let Err(e) = wal.preallocate() {
                    let _ = done.send(Err(e));
                    return;
                }
            }
        })?;
        Ok(WalThread { jobs, thread })
    }

    /// Queues a job; false if the thread has stopped (after an error, already reported).
    pub fn submit(&self, job: WalJob) -> bool {
        self.jobs.send(job).is_ok()
    }

    /// Stops the thread once the jobs already queued are written, and waits for it.
    pub fn stop(self) {
        let WalThread { jobs, thread } = self;
        drop(jobs); // the thread's `recv` fails once the queue is drained
        let _ = thread.join();
    }
}
