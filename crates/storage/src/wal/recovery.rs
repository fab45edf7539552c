//! Recovery for [`WalStorage::open`](super::WalStorage::open), in the phases the module docs
//! of [`wal`](super) describe: [`scan_segments`] reads and validates every segment and replays
//! its committed records, [`load_snapshot`] reads the snapshot the last `SnapshotMark` names,
//! [`check_log_follows_snapshot`] checks that the replayed entries start right after it, and
//! only then [`repair`] changes the disk, cutting what a crash may legitimately leave behind.
//!
//! Everything before `repair` only reads: an error there leaves the disk exactly as it was.

use kvraft_raft::{Entry, HardState, LogIndex, Snapshot, SnapshotMeta};

use super::{parse_segment_file_name, segment_file_name, RecoveryReport, TruncatedTail, WalError};
use crate::disk::{Disk, DiskError};
use crate::record::{
    decode_records, decode_segment_header, DecodeEnd, WalRecord, SEGMENT_HEADER_LEN,
};
use crate::snapshot_file::{decode_snapshot, parse_snapshot_file_name, snapshot_file_name};

/// Log state rebuilt by replaying records.
#[derive(Default)]
pub(super) struct Replay {
    pub(super) hard_state: HardState,
    pub(super) mark: Option<SnapshotMeta>,
    pub(super) mark_segment: Option<u64>,
    pub(super) entries: Vec<Entry>,
    pub(super) entry_segments: Vec<u64>,
}

impl Replay {
    /// Index of the last entry replayed so far (the snapshot mark's if there is none).
    fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.mark.map_or(LogIndex::ZERO, |m| m.index), |e| e.index)
    }

    fn apply(&mut self, record: WalRecord, seg: u64) -> Result<(), String> {
        match record {
            WalRecord::HardState(hs) => self.hard_state = hs,
            WalRecord::SnapshotMark(meta) => {
                let keep = self.entries.iter().take_while(|e| e.index <= meta.index).count();
                self.entries.drain(..keep);
                self.entry_segments.drain(..keep);
                self.mark = Some(meta);
                self.mark_segment = Some(seg);
            }
            WalRecord::Truncate(index) => {
                let keep = self.entries.iter().take_while(|e| e.index < index).count();
                self.entries.truncate(keep);
                self.entry_segments.truncate(keep);
            }
            WalRecord::Entry(entry) => {
                if let Some(last) = self.entries.last() {
                    if entry.index != last.index.next() {
                        return Err(format!(
                            "entry {} after entry {}",
                            entry.index.0, last.index.0
                        ));
                    }
                }
                self.entries.push(entry);
                self.entry_segments.push(seg);
            }
        }
        Ok(())
    }
}

/// The mutation recovery must make once everything is validated.
pub(super) enum Repair {
    Truncate { name: String, len: u64, dropped: u64 },
    Remove { name: String },
}

/// What reading the segments found: the replayed log, the live segments, where the last one's
/// data ends, and the one repair a crash may call for (it can only concern the last segment).
#[derive(Default)]
pub(super) struct Scan {
    pub(super) replay: Replay,
    pub(super) repair: Option<Repair>,
    /// Segments that passed validation, ascending.
    pub(super) live: Vec<u64>,
    /// End of the committed data in the last live segment.
    pub(super) current_len: u64,
    /// The last live segment's file length, or the length it will have after the repair.
    pub(super) allocated_len: u64,
    /// Filled in as the phases go; `segments` and `removed_incomplete_segment` by the scan.
    pub(super) report: RecoveryReport,
}

/// Phase 1a: reads every segment named in `names`, oldest first, validates it and replays its
/// committed records. Changes nothing on `disk`.
pub(super) fn scan_segments<D: Disk>(disk: &D, names: &[String]) -> Result<Scan, WalError> {
    let mut seqs: Vec<u64> = names.iter().filter_map(|n| parse_segment_file_name(n)).collect();
    seqs.sort_unstable();

    let mut scan = Scan::default();
    for (i, &seq) in seqs.iter().enumerate() {
        let file = segment_file_name(seq);
        let is_last = i + 1 == seqs.len();
        if let Some(&prev) = scan.live.last() {
            if seq != prev + 1 {
                return Err(WalError::MissingSegment {
                    file: segment_file_name(prev + 1),
                    expected: prev + 1,
                    next: file,
                });
            }
        }
        let data = disk.read(&file)?;
        if data.len() < SEGMENT_HEADER_LEN {
            if is_last {
                scan.repair = Some(Repair::Remove { name: file.clone() });
                scan.report.removed_incomplete_segment = Some(file);
                break;
            }
            return Err(WalError::ShortSegment { file, len: data.len() as u64 });
        }
        scan.check_header(&data, &file, seq)?;
        scan.replay_segment(&data, file, seq, is_last)?;
    }
    Ok(scan)
}

impl Scan {
    /// Checks segment `seq`'s header: its own sequence number, and (after the first segment)
    /// a first index that continues the log of the segments before it.
    fn check_header(&self, data: &[u8], file: &str, seq: u64) -> Result<(), WalError> {
        let header = decode_segment_header(data)
            .map_err(|source| WalError::SegmentHeader { file: file.to_string(), source })?;
        if header.sequence != seq {
            return Err(WalError::SequenceMismatch {
                file: file.to_string(),
                expected: seq,
                found: header.sequence,
            });
        }
        if !self.live.is_empty() {
            // A segment is started when the log before it ends at `first_index - 1`, so a
            // segment that lost whole batches at its end (say, to zeroed sectors that look
            // like preallocated space) is caught when its entries were among them.
            let expected = self.replay.last_index().next();
            if header.first_index != expected {
                return Err(WalError::Inconsistent {
                    file: file.to_string(),
                    offset: 0,
                    detail: format!(
                        "segment starts at entry {}, the segments before it end at {}",
                        header.first_index.0,
                        self.replay.last_index().0
                    ),
                });
            }
        }
        Ok(())
    }

    /// Decodes the records of a segment whose header is valid, replays those of its committed
    /// batches, and plans the truncation of an unterminated or torn tail (allowed in the last
    /// segment only).
    fn replay_segment(
        &mut self,
        data: &[u8],
        file: String,
        seq: u64,
        is_last: bool,
    ) -> Result<(), WalError> {
        let body = &data[SEGMENT_HEADER_LEN..];
        let outcome = decode_records(body);
        let at = |offset: usize| (SEGMENT_HEADER_LEN + offset) as u64;
        // Where the records end: the rest is zero-filled space or a torn tail.
        let data_end = match outcome.end {
            DecodeEnd::Corrupt { offset, reason } => {
                return Err(WalError::Corrupt { file, offset: at(offset), reason });
            }
            DecodeEnd::TornTail { offset } if !is_last => {
                return Err(WalError::TornNotLast { file, offset: at(offset) });
            }
            DecodeEnd::ZeroFilled { offset } => offset,
            DecodeEnd::Clean | DecodeEnd::TornTail { .. } => body.len(),
        };
        // A batch is committed by its closing HardState record.
        let committed = outcome
            .records
            .iter()
            .rposition(|r| matches!(r.record, WalRecord::HardState(_)))
            .map_or(0, |p| p + 1);
        let committed_len =
            outcome.records[..committed].last().map_or(0, |r| r.offset + r.encoded_len);
        // Records after the last HardState are cut whether zeros follow them or not; the
        // cut takes the zero-filled space with it (`preallocate` writes it again).
        self.allocated_len = data.len() as u64;
        if committed_len < data_end {
            if !is_last {
                return Err(WalError::TornNotLast { file, offset: at(committed_len) });
            }
            self.repair = Some(Repair::Truncate {
                name: file.clone(),
                len: at(committed_len),
                dropped: (body.len() - committed_len) as u64,
            });
            self.allocated_len = at(committed_len);
        }
        for r in outcome.records.into_iter().take(committed) {
            let offset = at(r.offset);
            self.replay.apply(r.record, seq).map_err(|detail| WalError::Inconsistent {
                file: file.clone(),
                offset,
                detail,
            })?;
        }
        self.report.segments.push(file);
        self.live.push(seq);
        self.current_len = at(committed_len);
        Ok(())
    }
}

/// Phase 1b: reads the snapshot file named by the last `SnapshotMark` (`mark`), which must
/// exist and hold exactly that snapshot, and records its name in `report`. No mark: the empty
/// snapshot. Changes nothing on `disk`.
pub(super) fn load_snapshot<D: Disk>(
    disk: &D,
    mark: Option<SnapshotMeta>,
    report: &mut RecoveryReport,
) -> Result<Snapshot, WalError> {
    let Some(meta) = mark else { return Ok(Snapshot::default()) };
    let file = snapshot_file_name(meta);
    let data = match disk.read(&file) {
        Ok(data) => data,
        Err(DiskError::NotFound { .. }) => return Err(WalError::MissingSnapshot { file }),
        Err(e) => return Err(e.into()),
    };
    let snapshot = decode_snapshot(data)
        .map_err(|source| WalError::BadSnapshot { file: file.clone(), source })?;
    if snapshot.meta != meta {
        return Err(WalError::Inconsistent {
            file,
            offset: 0,
            detail: format!("snapshot file holds {:?}", snapshot.meta),
        });
    }
    report.snapshot_file = Some(file);
    Ok(snapshot)
}

/// Phase 1c: the first retained entry must come right after the snapshot. The error names
/// the last segment replayed, where the log's end was written.
pub(super) fn check_log_follows_snapshot(
    entries: &[Entry],
    snapshot: &Snapshot,
    report: &RecoveryReport,
) -> Result<(), WalError> {
    if let Some(first) = entries.first() {
        let expected = snapshot.meta.index.next();
        if first.index != expected {
            let file = report.segments.last().cloned().unwrap_or_default();
            return Err(WalError::Inconsistent {
                file,
                offset: 0,
                detail: format!(
                    "log starts at entry {}, the snapshot ends at {}",
                    first.index.0, snapshot.meta.index.0
                ),
            });
        }
    }
    Ok(())
}

/// The snapshot files in `names` other than the one loaded: left by a persist that was never
/// acknowledged, so recovery ignores them (the next snapshot's clean-up removes them).
pub(super) fn ignored_snapshots(names: &[String], loaded: Option<&String>) -> Vec<String> {
    names
        .iter()
        .filter(|n| parse_snapshot_file_name(n).is_some())
        .filter(|n| Some(*n) != loaded)
        .cloned()
        .collect()
}

/// Phase 2: once everything is validated, makes the one change a crash may call for, durably,
/// and records a truncation in `report`.
pub(super) fn repair<D: Disk>(
    disk: &mut D,
    repair: Option<Repair>,
    report: &mut RecoveryReport,
) -> Result<(), WalError> {
    match repair {
        Some(Repair::Truncate { name, len, dropped }) => {
            disk.truncate(&name, len)?;
            disk.sync_data(&name)?;
            report.truncated =
                Some(TruncatedTail { file: name, offset: len, dropped_bytes: dropped });
        }
        Some(Repair::Remove { name }) => {
            disk.remove(&name)?;
            disk.sync_dir()?;
        }
        None => {}
    }
    Ok(())
}
