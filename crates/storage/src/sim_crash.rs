//! Power loss for [`SimDisk`]: which unsynced writes and directory changes survive.
//!
//! Each file keeps its durable bytes, plus, chosen per file by the caller's generator:
//! - nothing more ([`FileFate::SyncedOnly`]);
//! - an ordered prefix of the later writes, the last one torn at any byte
//!   ([`FileFate::Prefix`]); for appends this is "the synced bytes, then any prefix of the
//!   unsynced tail", the torn WAL tail recovery must handle;
//! - a random subset of the later writes applied in a random order, the last one possibly
//!   torn ([`FileFate::Subset`]): page writeback has no order, so a later record can be on
//!   disk while an earlier one is not (a hole of zeros if it lay beyond the durable length).
//!
//! Each unsynced directory change is kept or lost independently, except that a change is lost
//! whenever an earlier change to one of the same names was, so every name's history survives
//! as a prefix and a rename is atomic, as on a journaling filesystem.

use std::collections::{BTreeMap, BTreeSet};

use kvraft_raft::DetRng;

use crate::sim_disk::{Inode, SimDisk};

/// Which crash outcomes [`SimDisk::crash_with`] may choose for a file with unsynced writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashPolicy {
    /// A write may survive in part: a prefix of it, cut at any byte.
    pub torn_prefix: bool,
    /// Unsynced writes may survive out of order, any subset of them (the page cache flushes pages
    /// in no set order).
    pub reorder: bool,
}

impl CrashPolicy {
    /// Every outcome a real disk can produce.
    pub const ALL: CrashPolicy = CrashPolicy { torn_prefix: true, reorder: true };
    /// Unsynced file data is always lost entirely (directory changes are still random).
    pub const SYNCED_ONLY: CrashPolicy = CrashPolicy { torn_prefix: false, reorder: false };
    /// Writes survive in order only, the last one possibly torn.
    pub const TORN_PREFIX: CrashPolicy = CrashPolicy { torn_prefix: true, reorder: false };
}

/// What a crash did to one file's unsynced writes (indices into the writes since the last
/// sync, oldest = 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFate {
    /// Only the durable bytes survived.
    SyncedOnly,
    /// Writes `0..full_ops` survived whole, then `torn_units` bytes of write `full_ops`.
    Prefix {
        /// How many writes survived whole.
        full_ops: usize,
        /// How many bytes of the next one survived.
        torn_units: usize,
    },
    /// Writes `order` were applied in that order; the last one cut to `last_torn_units`.
    Subset {
        /// The writes that survived, in the order they were applied.
        order: Vec<usize>,
        /// How many bytes of the last one survived, if it was cut.
        last_torn_units: Option<usize>,
    },
}

/// What [`SimDisk::crash_with`] chose, for test assertions and failure messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Fate of every file that exists after the crash, by its post-crash name.
    pub files: BTreeMap<String, FileFate>,
    /// Unsynced directory operations (create, rename, remove) that survived.
    pub dir_ops_kept: usize,
    /// Unsynced directory operations that were lost.
    pub dir_ops_lost: usize,
}

impl SimDisk {
    /// Power loss with every outcome allowed: the disk becomes what a reboot would find.
    pub fn crash(&mut self, rng: &mut DetRng) -> CrashReport {
        self.crash_with(rng, CrashPolicy::ALL)
    }

    /// Power loss choosing only among the outcomes `policy` allows. Afterwards everything on
    /// the disk is durable (the reboot found it there). Fault plan and counters are kept.
    pub fn crash_with(&mut self, rng: &mut DetRng, policy: CrashPolicy) -> CrashReport {
        let mut report = CrashReport::default();

        let mut dir = self.durable_dir.clone();
        let mut lost_names: BTreeSet<String> = BTreeSet::new();
        for op in &self.pending_dir {
            let names = op.names();
            let blocked = names.iter().any(|n| lost_names.contains(*n));
            if !blocked && rng.chance(1, 2) {
                op.apply(&mut dir);
                report.dir_ops_kept += 1;
            } else {
                lost_names.extend(names.into_iter().map(str::to_string));
                report.dir_ops_lost += 1;
            }
        }

        // BTreeMap order makes the generator's draws, and so the image, a function of the seed.
        let mut inodes = BTreeMap::new();
        for (name, ino) in &dir {
            // Every entry (durable or pending) refers to a kept inode: inodes are only
            // collected when the directory has no pending changes.
            let Some(inode) = self.inodes.get(ino) else { continue };
            let (image, fate) = crash_image(inode, rng, policy);
            inodes.insert(*ino, Inode::recovered(image));
            report.files.insert(name.clone(), fate);
        }

        self.inodes = inodes;
        self.durable_dir = dir.clone();
        self.dir = dir;
        self.pending_dir.clear();
        report
    }
}

/// The bytes one file holds after a crash.
fn crash_image(inode: &Inode, rng: &mut DetRng, policy: CrashPolicy) -> (Vec<u8>, FileFate) {
    let mut image = inode.durable.clone();
    let ops = &inode.pending;
    if ops.is_empty() {
        return (image, FileFate::SyncedOnly);
    }
    let modes = 1 + u64::from(policy.torn_prefix) + u64::from(policy.reorder);
    let mut pick = rng.below(modes);
    if pick == 0 {
        return (image, FileFate::SyncedOnly);
    }
    if policy.torn_prefix {
        pick -= 1;
        if pick == 0 {
            let full_ops = rng.below(ops.len() as u64) as usize;
            for op in &ops[..full_ops] {
                op.apply_all(&mut image);
            }
            let torn = &ops[full_ops];
            let torn_units = rng.below(torn.tear_units() as u64 + 1) as usize;
            torn.apply(&mut image, torn_units);
            return (image, FileFate::Prefix { full_ops, torn_units });
        }
    }
    let mut order: Vec<usize> = (0..ops.len()).filter(|_| rng.chance(1, 2)).collect();
    // Fisher–Yates with our own generator, so the order is part of the seed's replay.
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let mut last_torn_units = None;
    for (k, &i) in order.iter().enumerate() {
        let op = &ops[i];
        if k + 1 == order.len() && rng.chance(1, 2) {
            let units = rng.below(op.tear_units() as u64 + 1) as usize;
            op.apply(&mut image, units);
            last_torn_units = Some(units);
        } else {
            op.apply_all(&mut image);
        }
    }
    (image, FileFate::Subset { order, last_torn_units })
}
