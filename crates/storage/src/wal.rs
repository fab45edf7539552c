//! [`WalStorage`]: a [`Storage`] with [`MemStorage`](kvraft_raft::MemStorage)'s exact semantics,
//! made durable on a [`Disk`] as a segmented write-ahead log plus snapshot files.
//!
//! # Layout
//!
//! - Segments `wal-{sequence:016x}.log`, each a [segment header](crate::record) followed by
//!   records, possibly followed by zero-filled space (see *Preallocation*). Sequence numbers
//!   are consecutive; the highest is the one being written. A segment's header names the
//!   first entry index it may hold: the index after the last entry of the segments before it.
//! - Snapshots `snapshot-{index:016x}-{term:016x}.snap` (see [`crate::snapshot_file`]).
//!
//! # Writing
//!
//! `persist` encodes the whole batch into one buffer: a `SnapshotMark` if the batch has a
//! snapshot (followed by `Truncate(0)` when MemStorage would drop every entry), a `Truncate` if
//! the entries replace a stored suffix, the entries, and **always** a closing `HardState`
//! record (the current one if the batch does not change it). It does one write, at the end of
//! the segment's data (`write_at`, not `append`: the file may be longer than its data), and
//! one `sync_data`: there is never a second write to a segment before the previous one is
//! synced.
//!
//! The closing `HardState` is the batch's commit marker: a torn write can leave a clean prefix
//! of a batch's records on disk, and recovery ignores (and truncates away) every record after
//! the last `HardState`, so a batch survives a crash entirely or not at all.
//!
//! A snapshot's data is written before its batch: `snap.tmp`, `sync_data`, rename, `sync_dir`.
//! Once the batch is durable, other snapshot files are removed, and segments holding nothing
//! that recovery still needs (no retained entry, not the latest `SnapshotMark`, not the newest
//! segment) are removed oldest first, with a `sync_dir` after each, so a crash never leaves a
//! gap in the sequence.
//!
//! # Preallocation
//!
//! An fdatasync that must also commit a file-size change (or the conversion of an unwritten
//! extent) costs a filesystem journal commit; one that only flushes overwritten blocks does
//! not, and is markedly faster. So the WAL writes its batches into space that was zero-filled
//! and synced ahead of time: [`WalStorage::preallocate`], called by the driver once a sync has
//! been acknowledged (off the critical path), keeps at least [`WalConfig::preallocate_bytes`]
//! of such space after the data, extending the file by that much whenever less is left, and
//! starts the next segment early if the current one is full. A new segment gets its space when
//! it is started (after its header is durable). `write_batches` never writes zeros itself: a
//! batch larger than the space left just extends the file, and the next `preallocate` catches
//! up. The data length, not the file length, decides rollover; `raft_state_size` counts
//! entries and hard state only, never preallocated space.
//!
//! # Recovery
//!
//! [`WalStorage::open`] first reads and validates everything, changing nothing; any of these
//! stops it with a [`WalError`] naming the file (and offset): a corrupt record anywhere, a torn
//! tail or an unterminated batch in a segment other than the last, a gap in the sequence, a bad
//! segment header (including an unknown format version), a segment whose header's first index
//! does not follow the segments before it, a missing or damaged snapshot file for the last
//! `SnapshotMark`. Only then does it repair what a crash may legitimately leave behind, and
//! says so in the [`RecoveryReport`]: a torn tail (or unterminated batch) in the last segment
//! is truncated and synced, and a last segment shorter than its header (a rollover interrupted
//! by the crash) is removed.
//!
//! All-zero bytes after the last intact record of a segment ([`DecodeEnd::ZeroFilled`]) are
//! preallocated space, in any segment (a segment keeps its unused space when the next one is
//! started): the clean end of the data, not reported, not truncated, and the next batch is
//! written where the data ends. A batch torn while being written into that space leaves a
//! partial record followed by zeros: a torn tail, truncated as above (the truncation drops the
//! zero-filled space after it too; `preallocate` writes it again). Records after the last
//! `HardState` are an unterminated batch whether zeros follow them or not.
//!
//! The snapshot used is the one named by the last `SnapshotMark` in the log, not simply the
//! newest snapshot file: a newer file can exist if the crash hit after the file was renamed into
//! place but before its batch was durable, and that batch was never acknowledged.
//!
//! # Errors while writing
//!
//! Any disk error while writing a batch (a failed `sync_data` in particular) poisons the WAL:
//! every later `persist` returns [`WalError::Poisoned`]. An fsync is never retried, because
//! after a failed fsync the kernel may have dropped the data while reads still return it.

use kvraft_raft::{
    size, HardState, LogIndex, NodeId, PersistBatch, RecoveredState, Snapshot, Storage,
};
use thiserror::Error;

use crate::disk::{Disk, DiskError};
use crate::record::{
    encode_record, encode_segment_header, CorruptReason, RecordError, SegmentHeader, WalRecord,
    MAX_PAYLOAD_LEN, SEGMENT_HEADER_LEN,
};
use crate::snapshot_file::{
    encode_snapshot_header, parse_snapshot_file_name, snapshot_file_name, SnapshotFileError,
    SNAPSHOT_TMP_NAME,
};

mod recovery;

/// Tuning for [`WalStorage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// A new segment is started before a batch once the current one holds more than this many
    /// bytes of data (header and records; preallocated space does not count).
    pub segment_size: u64,
    /// How much zero-filled, synced space [`WalStorage::preallocate`] keeps ready past the end
    /// of the data in the current segment (see the module docs). 0 turns preallocation off:
    /// every batch then extends its segment.
    pub preallocate_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> WalConfig {
        WalConfig { segment_size: 64 << 20, preallocate_bytes: 1 << 20 }
    }
}

/// The zeros [`WalStorage::preallocate`] writes, one chunk at a time (never allocated per call).
static ZEROS: [u8; 64 << 10] = [0; 64 << 10];

/// Errors from [`WalStorage`]. Recovery errors name the file and, where it applies, the byte
/// offset in that file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WalError {
    /// A disk operation failed.
    #[error(transparent)]
    Disk(#[from] DiskError),

    /// A write or fsync failed earlier; the WAL accepts no more writes.
    #[error("the WAL is poisoned by an earlier write or fsync failure and accepts no writes")]
    Poisoned,

    /// The batch could not be encoded (nothing was written).
    #[error("cannot encode batch: {0}")]
    Encode(RecordError),

    /// A segment's header is damaged or of an unknown version.
    #[error("{file}: bad segment header: {source}")]
    SegmentHeader {
        /// The segment.
        file: String,
        /// What is wrong with its header.
        source: RecordError,
    },

    /// A segment's header names another sequence number than its file name.
    #[error("{file}: segment header has sequence {found}, expected {expected}")]
    SequenceMismatch {
        /// The segment.
        file: String,
        /// The sequence its name gives.
        expected: u64,
        /// The sequence its header gives.
        found: u64,
    },

    /// The sequence of segments has a gap.
    #[error("{file}: missing WAL segment (sequence {expected}) before {next}")]
    MissingSegment {
        /// The missing segment's name.
        file: String,
        /// Its sequence number.
        expected: u64,
        /// The segment found after the gap.
        next: String,
    },

    /// A segment before the last is shorter than a header.
    #[error("{file}: {len} bytes, shorter than a segment header, and not the last segment")]
    ShortSegment {
        /// The segment.
        file: String,
        /// Its length.
        len: u64,
    },

    /// A record is corrupt (not a torn tail).
    #[error("{file}: corrupt record at offset {offset}: {reason}")]
    Corrupt {
        /// The segment.
        file: String,
        /// Where the bad record starts in it.
        offset: u64,
        /// Why it is corruption, not a torn tail.
        reason: CorruptReason,
    },

    /// A segment before the last ends torn or unterminated: a crash can only tear the last one.
    #[error(
        "{file}: torn or unterminated batch at offset {offset} in a segment that is not the last"
    )]
    TornNotLast {
        /// The segment.
        file: String,
        /// Where the torn or unterminated data starts.
        offset: u64,
    },

    /// Intact records that do not make a log: an entry out of sequence, a segment or snapshot that
    /// does not continue the log before it.
    #[error("{file}: record at offset {offset} does not follow the log: {detail}")]
    Inconsistent {
        /// The segment (or snapshot file).
        file: String,
        /// Where the record starts (0 for a header or a snapshot file).
        offset: u64,
        /// What does not follow.
        detail: String,
    },

    /// The snapshot file named by the last `SnapshotMark` does not exist.
    #[error("{file}: snapshot named by the WAL is missing")]
    MissingSnapshot {
        /// The snapshot file's name.
        file: String,
    },

    /// The snapshot file named by the last `SnapshotMark` is damaged.
    #[error("{file}: bad snapshot file: {source}")]
    BadSnapshot {
        /// The snapshot file.
        file: String,
        /// What is wrong with it.
        source: SnapshotFileError,
    },
}

/// A torn tail that recovery cut off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TruncatedTail {
    /// The segment cut.
    pub file: String,
    /// The file's new length (the end of its last complete batch).
    pub offset: u64,
    /// How many bytes were cut from the file (any zero-filled space after the tail included).
    pub dropped_bytes: u64,
}

/// What [`WalStorage::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segments replayed, in order.
    pub segments: Vec<String>,
    /// The torn tail (or unterminated last batch) cut from the last segment. Zero-filled
    /// (preallocated) space after the data is neither torn nor cut, and not reported.
    pub truncated: Option<TruncatedTail>,
    /// A last segment shorter than a header (an interrupted rollover), removed.
    pub removed_incomplete_segment: Option<String>,
    /// The segment created because the disk held none.
    pub created_segment: Option<String>,
    /// The snapshot file loaded.
    pub snapshot_file: Option<String>,
    /// Snapshot files not named by the log (left by an unacknowledged persist), ignored.
    pub ignored_snapshots: Vec<String>,
}

/// The file name of segment `sequence`.
pub fn segment_file_name(sequence: u64) -> String {
    format!("wal-{sequence:016x}.log")
}

/// The sequence number named by a segment file name, or `None` if `name` is not one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A durable [`Storage`] on a [`Disk`]. See the module docs.
#[derive(Debug)]
pub struct WalStorage<D: Disk> {
    disk: D,
    config: WalConfig,
    state: RecoveredState,
    entry_bytes: usize,
    /// The segment each retained entry was written to, parallel to `state.entries`.
    entry_segments: Vec<u64>,
    /// The segment holding the latest `SnapshotMark`.
    mark_segment: Option<u64>,
    /// Live segments, ascending; the last is written to.
    segments: Vec<u64>,
    /// End of the data (header and records) in the current segment: the next batch goes here.
    current_len: u64,
    /// The current segment's file length; `[current_len, allocated_len)` is all zeros, and
    /// synced once `preallocate` has returned.
    allocated_len: u64,
    snapshot_file: Option<String>,
    /// The segment written by `write_batches` and not yet synced.
    unsynced: Option<String>,
    /// A batch since the last sync wrote a snapshot file (so the sync removes the old ones).
    snapshot_written: bool,
    poisoned: bool,
    report: RecoveryReport,
}

impl<D: Disk> WalStorage<D> {
    /// Opens (recovering) the WAL on `disk` with the default configuration.
    pub fn open(disk: D) -> Result<WalStorage<D>, WalError> {
        WalStorage::open_with(disk, WalConfig::default())
    }

    /// Opens (recovering) the WAL on `disk`. An empty disk gets a fresh first segment.
    ///
    /// Recovery (see the module docs; its phases are in `wal/recovery.rs`) first reads and
    /// validates everything, changing nothing, and only then repairs what a crash may leave
    /// behind.
    pub fn open_with(mut disk: D, config: WalConfig) -> Result<WalStorage<D>, WalError> {
        let names = disk.list()?;

        // Phase 1: read and validate; change nothing.
        let recovery::Scan { replay, repair, live, current_len, allocated_len, mut report } =
            recovery::scan_segments(&disk, &names)?;
        let snapshot = recovery::load_snapshot(&disk, replay.mark, &mut report)?;
        recovery::check_log_follows_snapshot(&replay.entries, &snapshot, &report)?;
        report.ignored_snapshots =
            recovery::ignored_snapshots(&names, report.snapshot_file.as_ref());

        // Phase 2: repair what a crash may leave behind.
        recovery::repair(&mut disk, repair, &mut report)?;

        let entry_bytes = replay.entries.iter().map(size::entry_len).sum();
        let mut wal = WalStorage {
            disk,
            config,
            state: RecoveredState {
                hard_state: replay.hard_state,
                snapshot,
                entries: replay.entries,
            },
            entry_bytes,
            entry_segments: replay.entry_segments,
            mark_segment: replay.mark_segment,
            segments: live,
            current_len,
            allocated_len,
            snapshot_file: report.snapshot_file.clone(),
            unsynced: None,
            snapshot_written: false,
            poisoned: false,
            report,
        };
        if wal.segments.is_empty() {
            let name = wal.start_segment(1)?;
            wal.report.created_segment = Some(name);
        }
        Ok(wal)
    }
}

impl<D: Disk> WalStorage<D> {
    /// What the recovery in `open` found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The disk under the WAL.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The disk, e.g. for a test to change its fault plan. Writing to the WAL's files through
    /// it voids every guarantee.
    pub fn disk_mut(&mut self) -> &mut D {
        &mut self.disk
    }

    /// The disk under the WAL, e.g. to crash a simulated disk and open the WAL again on it.
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// The state a restart would recover, without reading the disk.
    pub fn state(&self) -> &RecoveredState {
        &self.state
    }

    /// True once a failed write or fsync has poisoned the WAL: it accepts no more writes.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Live segment file names, oldest first.
    pub fn segment_files(&self) -> Vec<String> {
        self.segments.iter().map(|&s| segment_file_name(s)).collect()
    }

    /// Creates segment `seq` with its header, durably (file and directory entry).
    fn start_segment(&mut self, seq: u64) -> Result<String, WalError> {
        let name = segment_file_name(seq);
        let first_index =
            self.state.entries.last().map_or(self.state.snapshot.meta.index, |e| e.index).next();
        let header = encode_segment_header(&SegmentHeader { sequence: seq, first_index });
        self.disk.create(&name)?;
        self.disk.write_at(&name, 0, &header)?;
        // The header is durable before any zeros go after it: a crash must never leave a
        // file of header length or more whose header did not land (that is fatal corruption,
        // while a shorter file is an interrupted rollover that recovery removes).
        self.disk.sync_data(&name)?;
        self.disk.sync_dir()?;
        self.segments.push(seq);
        self.current_len = SEGMENT_HEADER_LEN as u64;
        self.allocated_len = SEGMENT_HEADER_LEN as u64;
        self.extend_allocation()?;
        Ok(name)
    }

    /// True once the current segment holds more than `segment_size` bytes of data (never for
    /// a segment without records, so a tiny `segment_size` cannot roll from empty to empty).
    fn segment_full(&self) -> bool {
        self.current_len > self.config.segment_size.max(SEGMENT_HEADER_LEN as u64)
    }

    /// Starts the segment after the current one.
    fn roll_segment(&mut self) -> Result<(), WalError> {
        let next = self.segments.last().map_or(1, |s| s + 1);
        self.start_segment(next).map(|_| ())
    }

    /// If fewer than `preallocate_bytes` zero-filled bytes follow the data, writes
    /// `preallocate_bytes` more zeros at the end of the file, then syncs them. Extending by a
    /// whole `preallocate_bytes` (not just the shortfall) means one file-size change, and so
    /// one costly fsync, per `preallocate_bytes` of data, however small the batches.
    fn extend_allocation(&mut self) -> Result<(), WalError> {
        let want = self.config.preallocate_bytes;
        if want == 0 || self.allocated_len - self.current_len >= want {
            return Ok(());
        }
        let name = segment_file_name(*self.segments.last().expect("a WAL always has a segment"));
        let end = self.allocated_len + want;
        while self.allocated_len < end {
            let chunk = (end - self.allocated_len).min(ZEROS.len() as u64) as usize;
            self.disk.write_at(&name, self.allocated_len, &ZEROS[..chunk])?;
            self.allocated_len += chunk as u64;
        }
        self.disk.sync_data(&name)?;
        Ok(())
    }

    /// Position of `index` in the stored entries (they are contiguous).
    fn position(&self, index: LogIndex) -> Option<usize> {
        let first = self.state.entries.first()?.index;
        let pos = index.0.checked_sub(first.0)? as usize;
        (pos < self.state.entries.len()).then_some(pos)
    }

    fn drop_entries(&mut self, range: std::ops::Range<usize>) {
        self.entry_segments.drain(range.clone());
        let removed: usize = self.state.entries.drain(range).map(|e| size::entry_len(&e)).sum();
        self.entry_bytes -= removed;
    }

    /// Writes the snapshot file durably under its final name.
    fn write_snapshot_file(&mut self, snapshot: &Snapshot) -> Result<String, WalError> {
        let name = snapshot_file_name(snapshot.meta);
        match self.disk.remove(SNAPSHOT_TMP_NAME) {
            Ok(()) | Err(DiskError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.disk.create(SNAPSHOT_TMP_NAME)?;
        // Header and data in two appends: concatenating them would copy the whole snapshot.
        self.disk.append(SNAPSHOT_TMP_NAME, &encode_snapshot_header(snapshot))?;
        self.disk.append(SNAPSHOT_TMP_NAME, &snapshot.data)?;
        self.disk.sync_data(SNAPSHOT_TMP_NAME)?;
        self.disk.rename(SNAPSHOT_TMP_NAME, &name)?;
        if !cfg!(feature = "bug-skip-dir-fsync-after-rename") {
            self.disk.sync_dir()?;
        }
        Ok(name)
    }

    /// Everything after the batch is durable: drop other snapshot files and unneeded segments.
    fn clean_up(&mut self, snapshot_written: bool) -> Result<(), WalError> {
        if snapshot_written {
            let stale: Vec<String> = self
                .disk
                .list()?
                .into_iter()
                .filter(|n| parse_snapshot_file_name(n).is_some())
                .filter(|n| Some(n) != self.snapshot_file.as_ref())
                .collect();
            for name in &stale {
                self.disk.remove(name)?;
            }
            if !stale.is_empty() {
                self.disk.sync_dir()?;
            }
        }
        let Some(&current) = self.segments.last() else { return Ok(()) };
        let needed = [self.mark_segment, self.entry_segments.first().copied(), Some(current)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(current);
        while self.segments.len() > 1 && self.segments[0] < needed {
            let name = segment_file_name(self.segments[0]);
            self.disk.remove(&name)?;
            // One at a time, so a crash can only lose a prefix of the sequence, never a middle.
            self.disk.sync_dir()?;
            self.segments.remove(0);
        }
        Ok(())
    }

    /// Plans one batch's records against the current state, writes its snapshot file (if
    /// any), and applies the batch to the in-memory state exactly as MemStorage would. The
    /// records are appended to `buf`; nothing is written to the segment here.
    ///
    /// MemStorage is the model; WalStorage must not share its code. This staging and the
    /// replay in `wal/recovery.rs` implement `MemStorage::persist`'s semantics again on
    /// purpose: the simulator checks the WAL against a MemStorage of the acknowledged batches,
    /// and the conformance suite runs both, which only works while the two are written apart.
    fn stage_batch(
        &mut self,
        batch: PersistBatch<'_>,
        seq: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), WalError> {
        let mut records = Vec::new();
        let mut snapshot_keeps: Option<usize> = None; // entries dropped: ..n, or None = all
        let mut snapshot_index = self.state.snapshot.meta.index;
        let mut stored_last = self.state.entries.last().map(|e| e.index);
        let mut first_stored = self.state.entries.first().map(|e| e.index);
        if let Some(snapshot) = batch.snapshot {
            let meta = snapshot.meta;
            records.push(WalRecord::SnapshotMark(meta));
            match self.position(meta.index) {
                Some(pos) if self.state.entries[pos].term == meta.term => {
                    snapshot_keeps = Some(pos + 1);
                    first_stored = self.state.entries.get(pos + 1).map(|e| e.index);
                    if first_stored.is_none() {
                        stored_last = None;
                    }
                }
                _ => {
                    if !self.state.entries.is_empty() {
                        records.push(WalRecord::Truncate(LogIndex::ZERO));
                    }
                    first_stored = None;
                    stored_last = None;
                }
            }
            snapshot_index = meta.index;
        }
        let skip = batch.entries.iter().take_while(|e| e.index <= snapshot_index).count();
        let new = &batch.entries[skip..];
        let mut truncate_at: Option<LogIndex> = None;
        if let Some(first) = new.first() {
            let overlaps = match (first_stored, stored_last) {
                (Some(lo), Some(hi)) => first.index >= lo && first.index <= hi,
                _ => false,
            };
            if overlaps {
                truncate_at = Some(first.index);
                records.push(WalRecord::Truncate(first.index));
            }
            let expected =
                if overlaps { first.index } else { stored_last.unwrap_or(snapshot_index).next() };
            assert_eq!(first.index, expected, "persisting entries with a gap in the log");
            records.extend(new.iter().cloned().map(WalRecord::Entry));
        }
        let hard_state = batch.hard_state.unwrap_or(self.state.hard_state);
        records.push(WalRecord::HardState(hard_state));
        for record in &records {
            encode_record(record, buf).expect("batch validated by check_encodable");
        }

        // The snapshot file goes to disk (durably) before the batch that names it.
        if let Some(snapshot) = batch.snapshot {
            let name = self.write_snapshot_file(snapshot)?;
            match snapshot_keeps {
                Some(n) => self.drop_entries(0..n),
                None => self.drop_entries(0..self.state.entries.len()),
            }
            self.state.snapshot = snapshot.clone();
            self.mark_segment = Some(seq);
            self.snapshot_file = Some(name);
            self.snapshot_written = true;
        }
        if let Some(at) = truncate_at {
            let pos = self.position(at).expect("truncation point is stored");
            self.drop_entries(pos..self.state.entries.len());
        }
        if !new.is_empty() {
            self.entry_bytes += new.iter().map(size::entry_len).sum::<usize>();
            self.state.entries.extend_from_slice(new);
            self.entry_segments.resize(self.entry_segments.len() + new.len(), seq);
        }
        self.state.hard_state = hard_state;
        Ok(())
    }

    /// Writes `batches`, in order, as **one** write at the end of the current segment's data,
    /// without syncing it (group commit: one write and one fsync for everything that queued up
    /// meanwhile).
    /// Each batch closes with its own `HardState` record, so a crash keeps a prefix of whole
    /// batches. [`state`](WalStorage::state) reflects the batches at once; they are durable,
    /// and may be acknowledged, only once [`sync`](WalStorage::sync) returns Ok.
    ///
    /// # Panics
    /// If an earlier write is still unsynced: a second write before the fsync of the first
    /// could reach the disk without it, leaving a hole that recovery must call corruption.
    pub fn write_batches(&mut self, batches: &[PersistBatch<'_>]) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        assert!(self.unsynced.is_none(), "write_batches before the previous write was synced");
        if batches.iter().all(PersistBatch::is_empty) {
            return Ok(());
        }
        for batch in batches {
            check_encodable(batch).map_err(WalError::Encode)?;
        }
        let result = self.write_batches_inner(batches);
        if result.is_err() {
            // The in-memory state may be ahead of the disk now: accept nothing more.
            self.poisoned = true;
        }
        result
    }

    fn write_batches_inner(&mut self, batches: &[PersistBatch<'_>]) -> Result<(), WalError> {
        if self.segment_full() {
            self.roll_segment()?;
        }
        let seq = *self.segments.last().expect("a WAL always has a segment");
        let mut buf = Vec::new();
        for batch in batches.iter().filter(|b| !b.is_empty()) {
            self.stage_batch(*batch, seq, &mut buf)?;
        }
        let name = segment_file_name(seq);
        // At the end of the data, not of the file: the space after it may be preallocated.
        // A batch larger than that space simply extends the file.
        self.disk.write_at(&name, self.current_len, &buf)?;
        self.current_len += buf.len() as u64;
        self.allocated_len = self.allocated_len.max(self.current_len);
        self.unsynced = Some(name);
        Ok(())
    }

    /// Makes the last [`write_batches`](WalStorage::write_batches) durable (one `sync_data`),
    /// then removes what it superseded (older snapshot files, segments no longer needed). A
    /// no-op if nothing is unsynced. A failed fsync poisons the WAL: it is never retried.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        let Some(name) = self.unsynced.take() else { return Ok(()) };
        let result = self.sync_inner(&name);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn sync_inner(&mut self, name: &str) -> Result<(), WalError> {
        if !cfg!(feature = "bug-ack-before-fsync") {
            self.disk.sync_data(name)?;
        }
        let snapshot_written = std::mem::take(&mut self.snapshot_written);
        self.clean_up(snapshot_written)
    }

    /// True between `write_batches` and `sync`.
    pub fn has_unsynced(&self) -> bool {
        self.unsynced.is_some()
    }

    /// Prepares the space the next batches will be written to, off the critical path: call it
    /// after a [`sync`](WalStorage::sync) has been acknowledged, while no write is waiting.
    /// If the current segment is full it starts the next one now (rather than before the next
    /// batch); then, if fewer than [`WalConfig::preallocate_bytes`] zero-filled bytes follow
    /// the data, it writes that many more zeros at the end of the file and syncs them. When it
    /// returns Ok, at least `preallocate_bytes` of zero-filled, synced space follow the data,
    /// so the next batch that fits overwrites blocks that already exist and its fsync changes
    /// no file size. A no-op when `preallocate_bytes` is 0.
    ///
    /// A failure poisons the WAL, like a failed write.
    ///
    /// # Panics
    /// Between [`write_batches`](WalStorage::write_batches) and `sync`: the zeros would be a
    /// second write to the segment before the batch's fsync (which the crash reasoning above
    /// rules out), and the zero-fill would sit on the batch's critical path.
    pub fn preallocate(&mut self) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        assert!(self.unsynced.is_none(), "preallocate before the previous write was synced");
        if self.config.preallocate_bytes == 0 {
            return Ok(());
        }
        let result =
            if self.segment_full() { self.roll_segment() } else { self.extend_allocation() };
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Panics if the in-memory index of the log is inconsistent: one segment per retained
    /// entry, in order and live; consecutive live segments; the data inside the file; the
    /// latest snapshot mark in a live segment; entries right after the snapshot. Cheap (it
    /// does not walk the entries): the simulator calls it after every event.
    pub fn check_invariants(&self) {
        assert_eq!(
            self.entry_segments.len(),
            self.state.entries.len(),
            "WAL: a segment recorded for each retained entry"
        );
        let (Some(&oldest), Some(&newest)) = (self.segments.first(), self.segments.last()) else {
            panic!("WAL: no live segment");
        };
        assert_eq!(
            newest - oldest + 1,
            self.segments.len() as u64,
            "WAL: live segments {:?} are not consecutive",
            self.segments
        );
        if let (Some(&first), Some(&last)) =
            (self.entry_segments.first(), self.entry_segments.last())
        {
            assert!(
                oldest <= first && first <= last && last <= newest,
                "WAL: entries in segments {first}..={last}, live segments {oldest}..={newest}"
            );
        }
        if let Some(mark) = self.mark_segment {
            assert!(
                (oldest..=newest).contains(&mark),
                "WAL: the snapshot mark's segment {mark} is not live ({oldest}..={newest})"
            );
        }
        assert!(
            SEGMENT_HEADER_LEN as u64 <= self.current_len && self.current_len <= self.allocated_len,
            "WAL: data length {} outside [header, file length {}]",
            self.current_len,
            self.allocated_len
        );
        if let Some(first) = self.state.entries.first() {
            assert_eq!(
                first.index,
                self.state.snapshot.meta.index.next(),
                "WAL: the first retained entry does not follow the snapshot"
            );
        }
        if let Some(name) = &self.unsynced {
            assert_eq!(
                *name,
                segment_file_name(newest),
                "WAL: an unsynced write outside the current segment"
            );
        }
    }

    /// The current segment's data length (header and records) and file length: the two
    /// differ by the zero-filled space prepared for the next batches.
    pub fn current_segment_lengths(&self) -> (u64, u64) {
        (self.current_len, self.allocated_len)
    }
}

/// The errors `encode_record` could give for this batch's records, found before anything is
/// written or changed.
fn check_encodable(batch: &PersistBatch<'_>) -> Result<(), RecordError> {
    if let Some(HardState { vote: Some(NodeId(0)), .. }) = batch.hard_state {
        return Err(RecordError::VoteForNodeZero);
    }
    for entry in batch.entries {
        let len = WalRecord::Entry(entry.clone()).payload_len();
        if len > MAX_PAYLOAD_LEN {
            return Err(RecordError::RecordTooLarge { len });
        }
    }
    Ok(())
}

impl<D: Disk> Storage for WalStorage<D> {
    type Error = WalError;

    fn recover(&self) -> Result<RecoveredState, WalError> {
        Ok(self.state.clone())
    }

    fn persist(&mut self, batch: PersistBatch<'_>) -> Result<(), WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        self.write_batches(&[batch])?;
        self.sync()
    }

    fn raft_state_size(&self) -> usize {
        size::HARD_STATE_LEN + self.entry_bytes
    }

    fn snapshot_size(&self) -> usize {
        self.state.snapshot.data.len()
    }
}
