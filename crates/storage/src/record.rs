//! The write-ahead-log codec: the header at the start of every segment file, and the records
//! that follow it.
//!
//! This module only turns values into bytes and back. It never touches a disk, and it
//! decides nothing about which segment to read or where to truncate: it reports what it found and
//! the caller acts on it.
//!
//! # Format (version 2)
//!
//! Every integer is fixed-width little-endian.
//!
//! ## Segment header ([`SEGMENT_HEADER_LEN`] = 32 bytes, at offset 0 of every segment file)
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! |      0 |    8 | magic, [`SEGMENT_MAGIC`] = `b"KVRAFTWL"`                     |
//! |      8 |    4 | format version, u32 = [`FORMAT_VERSION`] (2)                 |
//! |     12 |    8 | segment sequence number, u64                                 |
//! |     20 |    8 | index of the first log entry this segment may hold, u64      |
//! |     28 |    4 | plain (unmasked) CRC32C of bytes 0..28, u32                  |
//!
//! [`decode_segment_header`] checks, in this order: length, magic ([`RecordError::BadMagic`]),
//! version ([`RecordError::UnknownVersion`]), checksum ([`RecordError::HeaderChecksum`]). The
//! version is checked before the checksum because a later version may lay the rest of the header
//! out differently (including where its checksum lives), so a version-1 reader cannot verify it.
//! A bit flip in the version field is therefore reported as an unknown version; both are fatal.
//!
//! ## Record ([`RECORD_HEADER_LEN`] = 9 bytes of header, then the payload)
//!
//! | offset | size | field                                                               |
//! |-------:|-----:|---------------------------------------------------------------------|
//! |      0 |    4 | payload length `n`, u32, at most [`MAX_PAYLOAD_LEN`] (64 MiB)       |
//! |      4 |    1 | record type tag, u8 (see below; 0 is never valid)                   |
//! |      5 |    4 | **masked** CRC32C of the type byte followed by the payload, u32     |
//! |      9 |    n | payload                                                             |
//!
//! The checksum is masked the way LevelDB masks its log checksums:
//! `mask(c) = ((c >> 15) | (c << 17)).wrapping_add(0xa282_ead8)`. Entry data is opaque client
//! bytes that may itself contain WAL records or other CRC-protected data; the CRC of a string
//! that embeds its own CRC has a fixed residue, and masking breaks that regularity.
//! The length is not covered by the checksum, but a damaged length changes which bytes are
//! checksummed, so it is caught all the same (see the torn-versus-corrupt rule).
//!
//! Payloads by type:
//!
//! | tag | type           | payload                                                  | size  |
//! |----:|----------------|----------------------------------------------------------|------:|
//! |   1 | `Entry`        | term u64, index u64, kind u8, then the data (the rest)   | >= 17 |
//! |   2 | `HardState`    | term u64, vote u64 (0 = no vote), commit index u64       |    24 |
//! |   3 | `Truncate`     | index u64: log entries at index >= this are dropped      |     8 |
//! |   4 | `SnapshotMark` | index u64, term u64 of the last entry a snapshot covers  |    16 |
//!
//! An entry's kind byte is 0 for a normal entry and 1 for a config entry, whose data must
//! decode as a `ClusterConfig`: any other kind byte, or a config that does not decode, is
//! corruption. Version 1 had no kind byte; its segments are refused with
//! [`RecordError::UnknownVersion`] rather than read with their data shifted by a byte.
//!
//! A `SnapshotMark` says the log prefix up to and including `index` (whose term is `term`) is
//! covered by a snapshot, so entries at or below it may be discarded.
//!
//! # Decoding a record stream, and the torn-versus-corrupt rule
//!
//! [`decode_records`] walks the buffer from offset 0 (the caller passes the bytes *after* the
//! segment header, so offsets are relative to that slice). A record at offset `o` is **intact**
//! when its 9-byte header is complete, its length is at most [`MAX_PAYLOAD_LEN`], its payload
//! lies within the buffer and its checksum matches. Otherwise it is **damaged**. The walk stops
//! at the first record that is not an intact, well-formed record, and the outcome's
//! [`DecodeEnd`] says why:
//!
//! 1. `o == buf.len()`: [`DecodeEnd::Clean`].
//! 2. The record is intact but its type tag is unknown or its payload has the wrong size for
//!    its type: [`DecodeEnd::Corrupt`], wherever it is. A torn write cannot produce a matching
//!    checksum, so this is a bug or a format mismatch, never a crash artefact.
//! 3. The record is damaged and every byte from `o` to the end is zero:
//!    [`DecodeEnd::ZeroFilled`] at `o`, the clean end of the data in a segment whose tail was
//!    zero-filled ahead of time (preallocated, see [`crate::wal`]). No valid record is all
//!    zeros, since tag 0 is invalid. A write into zero-filled space that was torn after `k`
//!    bytes leaves the record's first `k` bytes and then zeros: that is rule 5 (a torn tail),
//!    unless those `k` bytes happen to be zeros too, and then the space is exactly as it was
//!    before the write. (Conversely, if only bytes that were zeros anyway went missing, the
//!    zeros already there complete the record: it is intact, as if the write had landed whole.)
//! 4. The record is damaged and **an intact, well-formed record starts at some offset
//!    `p > o`** (found by trying every byte offset after `o`): [`DecodeEnd::Corrupt`]. Valid
//!    data after the damage means the log was damaged before its end, and recovery must stop
//!    rather than silently drop acknowledged records.
//! 5. Otherwise (the record is damaged and nothing valid follows it): [`DecodeEnd::TornTail`]
//!    at `o`. The caller truncates there.
//!
//! `ZeroFilled` tells the caller where the data ends; it says nothing about *which* records
//! form complete batches (the WAL still cuts records after the last `HardState`, zeros or not).
//!
//! Consequences: a length that runs past the end of the buffer, an incomplete header, or a bad
//! checksum *on the last record* is a torn tail; a bad checksum, an oversized length or a
//! damaged length *with an intact record after it* is corruption; a single flipped bit in the
//! last record is a torn tail (it cannot be told apart from a torn write). A length larger than
//! [`MAX_PAYLOAD_LEN`] is just one more kind of damage: torn tail at the end, corruption if
//! valid data follows.
//!
//! Searching every later offset, rather than only the offset the damaged header points to, is
//! what makes a damaged *length* field (the next record is then not where the header says) and
//! damage spanning several records (a zeroed sector) come out as corruption.
//!
//! Known limits of the rule, both erring on the side of stopping recovery:
//! * If the partial payload of a torn last `Entry` happens to contain the bytes of an intact
//!   record (client data that embeds WAL bytes), the tail is reported as `Corrupt`.
//! * If a crash persists the sectors of one multi-sector write out of order (a later sector
//!   written, an earlier one not), the damaged record is followed by an intact one and is
//!   reported as `Corrupt`, although none of those records had been acknowledged.
//! * The search is bounded: it checksums at most [`RESYNC_HASH_BUDGET`] bytes of candidate
//!   payloads. If the budget runs out first, the outcome is `Corrupt` with
//!   [`CorruptReason::ResyncBudgetExhausted`]: the decoder could not prove the tail was torn.
//!
//! Decoding never panics, and allocates only in proportion to the input (the decoded records
//! and copies of entry data), never in proportion to a length read from the input.

use bytes::Bytes;
use kvraft_raft::{
    ClusterConfig, Entry, EntryKind, HardState, LogIndex, NodeId, SnapshotMeta, Term,
};
use thiserror::Error;

/// The first eight bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"KVRAFTWL";
/// The only format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 2;
/// Encoded size of a [`SegmentHeader`].
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Bytes before a record's payload: length u32, type u8, masked CRC32C u32.
pub const RECORD_HEADER_LEN: usize = 9;
/// Largest payload a record may carry (64 MiB). A larger length in a header is damage.
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;
/// Largest `Entry::data` that fits in one record (the payload also holds term and index).
pub const MAX_ENTRY_DATA_LEN: usize = MAX_PAYLOAD_LEN - ENTRY_FIXED_LEN;
/// How many payload bytes the search for valid data after a damaged record may checksum before
/// it gives up (and reports corruption, see the module docs). Bounds recovery time on
/// adversarial or pathological input, where many overlapping byte offsets look like headers of
/// large records.
pub const RESYNC_HASH_BUDGET: usize = 256 << 20;

/// Term, index and kind before an entry's data.
const ENTRY_FIXED_LEN: usize = 17;
const HARD_STATE_LEN: usize = 24;
const TRUNCATE_LEN: usize = 8;
const SNAPSHOT_MARK_LEN: usize = 16;
/// Where the header checksum starts in an encoded segment header.
const SEGMENT_HEADER_CRC_AT: usize = SEGMENT_HEADER_LEN - 4;
/// LevelDB's checksum mask constant.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// The header at the start of every segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Position of this segment in the WAL; segments are replayed in increasing order.
    pub sequence: u64,
    /// Index of the first log entry this segment may hold.
    pub first_index: LogIndex,
}

/// One record of the write-ahead log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalRecord {
    /// One Raft log entry.
    Entry(Entry),
    /// The latest hard state; the last one in the log wins.
    HardState(HardState),
    /// Drop every log entry at index >= this one (a follower's log was overwritten).
    Truncate(LogIndex),
    /// The log prefix up to and including this position is covered by a snapshot; entries at or
    /// below it may be discarded.
    SnapshotMark(SnapshotMeta),
}

impl WalRecord {
    /// The record's type.
    pub fn kind(&self) -> RecordKind {
        match self {
            WalRecord::Entry(_) => RecordKind::Entry,
            WalRecord::HardState(_) => RecordKind::HardState,
            WalRecord::Truncate(_) => RecordKind::Truncate,
            WalRecord::SnapshotMark(_) => RecordKind::SnapshotMark,
        }
    }

    /// How many bytes [`encode_record`] appends for this record (header included).
    pub fn encoded_len(&self) -> usize {
        RECORD_HEADER_LEN + self.payload_len()
    }

    pub(crate) fn payload_len(&self) -> usize {
        match self {
            WalRecord::Entry(entry) => ENTRY_FIXED_LEN + entry.data.len(),
            WalRecord::HardState(_) => HARD_STATE_LEN,
            WalRecord::Truncate(_) => TRUNCATE_LEN,
            WalRecord::SnapshotMark(_) => SNAPSHOT_MARK_LEN,
        }
    }
}

/// The type of a record, as stored in its tag byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// A log entry.
    Entry,
    /// A hard state: it also closes (commits) a batch.
    HardState,
    /// Drop every entry at or after an index.
    Truncate,
    /// A snapshot was taken: its index and term name the snapshot file, and the entries it
    /// covers are dropped.
    SnapshotMark,
}

impl RecordKind {
    /// The tag byte on disk. Never 0, so that zero-filled space never reads as a record.
    pub fn tag(self) -> u8 {
        match self {
            RecordKind::Entry => 1,
            RecordKind::HardState => 2,
            RecordKind::Truncate => 3,
            RecordKind::SnapshotMark => 4,
        }
    }

    /// The type stored as `tag`, or `None` for a tag this version does not know.
    pub fn from_tag(tag: u8) -> Option<RecordKind> {
        match tag {
            1 => Some(RecordKind::Entry),
            2 => Some(RecordKind::HardState),
            3 => Some(RecordKind::Truncate),
            4 => Some(RecordKind::SnapshotMark),
            _ => None,
        }
    }

    /// Whether a payload of `len` bytes has the right size for this type.
    fn payload_len_ok(self, len: usize) -> bool {
        match self {
            RecordKind::Entry => len >= ENTRY_FIXED_LEN,
            RecordKind::HardState => len == HARD_STATE_LEN,
            RecordKind::Truncate => len == TRUNCATE_LEN,
            RecordKind::SnapshotMark => len == SNAPSHOT_MARK_LEN,
        }
    }
}

/// Errors from encoding records and from decoding segment headers.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The segment is shorter than a header.
    #[error("segment header is {len} bytes long, need {SEGMENT_HEADER_LEN}")]
    HeaderTooShort {
        /// The header's length.
        len: usize,
    },

    /// The segment does not start with the WAL magic.
    #[error("bad segment magic {found:02x?} (not a kvraft WAL segment)")]
    BadMagic {
        /// The first eight bytes.
        found: [u8; 8],
    },

    /// The segment's format version is not one this build reads.
    #[error("unknown WAL format version {version} (this build reads version {FORMAT_VERSION})")]
    UnknownVersion {
        /// The version found.
        version: u32,
    },

    /// The header does not match its checksum.
    #[error("segment header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderChecksum {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the header's fields.
        computed: u32,
    },

    /// The record's payload would exceed [`MAX_PAYLOAD_LEN`]; nothing was written.
    #[error("record payload of {len} bytes exceeds the maximum of {MAX_PAYLOAD_LEN}")]
    RecordTooLarge {
        /// The payload's length.
        len: usize,
    },

    /// `HardState::vote == Some(NodeId(0))` cannot be stored: 0 encodes "no vote".
    #[error("hard state votes for node 0, which encodes \"no vote\"")]
    VoteForNodeZero,
}

/// One record found by [`decode_records`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRecord {
    /// Where the record's header starts in the decoded buffer.
    pub offset: usize,
    /// Header plus payload; the next record starts at `offset + encoded_len`.
    pub encoded_len: usize,
    /// The record itself.
    pub record: WalRecord,
}

/// What [`decode_records`] found: the intact records, in order, and how the buffer ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeOutcome {
    /// The intact records, in order.
    pub records: Vec<DecodedRecord>,
    /// How the buffer ended after them.
    pub end: DecodeEnd,
}

impl DecodeOutcome {
    /// Length of the buffer's valid prefix: the end of the last intact record (0 if none). For
    /// `Clean` it is the buffer's length; for `ZeroFilled`, `TornTail` and `Corrupt` it equals
    /// their offset.
    pub fn valid_len(&self) -> usize {
        self.records.last().map_or(0, |r| r.offset + r.encoded_len)
    }
}

/// How a decoded buffer ended. See the module docs for the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeEnd {
    /// The buffer ended exactly at a record boundary.
    Clean,
    /// Every byte from `offset` to the end is zero (and `offset < len`): the data ends cleanly
    /// at `offset`, followed by zero-filled (preallocated) space. Not damage: the caller keeps
    /// the space and writes its next records at `offset`.
    ZeroFilled {
        /// Where the data ends.
        offset: usize,
    },
    /// The record at `offset` is incomplete or damaged, not all zeros, and nothing valid
    /// follows it: a torn write at the tail. The caller truncates the buffer to `offset`.
    TornTail {
        /// Where the torn record starts.
        offset: usize,
    },
    /// The record at `offset` is bad and this cannot be a torn tail. Recovery must stop.
    Corrupt {
        /// Where the bad record starts.
        offset: usize,
        /// Why it is corruption, not a torn tail.
        reason: CorruptReason,
    },
}

/// Why a record was judged corrupt rather than torn.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CorruptReason {
    /// A checksum-valid record with a tag this version does not know.
    #[error("unknown record type tag {tag}")]
    UnknownType {
        /// The tag found.
        tag: u8,
    },

    /// A checksum-valid record whose payload size does not fit its type.
    #[error("{kind:?} record with a {len}-byte payload")]
    BadPayloadLen {
        /// The record's type.
        kind: RecordKind,
        /// Its payload's length.
        len: usize,
    },

    /// A checksum-valid entry whose kind byte this version does not know.
    #[error("entry {index} has unknown kind {byte}")]
    UnknownEntryKind {
        /// The entry's index.
        index: LogIndex,
        /// The kind byte found.
        byte: u8,
    },

    /// A checksum-valid config entry whose configuration does not decode.
    #[error("config entry {index} is unreadable: {reason}")]
    BadConfigEntry {
        /// The entry's index.
        index: LogIndex,
        /// Why it does not decode.
        reason: String,
    },

    /// A damaged record followed by an intact record starting at `next_valid`.
    #[error("{damage}, followed by an intact record at offset {next_valid}")]
    Damaged {
        /// What is wrong with the record.
        damage: Damage,
        /// Where the intact record starts.
        next_valid: usize,
    },

    /// A damaged record, and the search for intact records after it ran out of budget.
    #[error("{damage}, and the search for valid records after it gave up")]
    ResyncBudgetExhausted {
        /// What is wrong with the record.
        damage: Damage,
    },
}

/// What is wrong with a damaged record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum Damage {
    /// Fewer bytes are left than a record header takes.
    #[error("incomplete record header ({available} bytes left)")]
    IncompleteHeader {
        /// The bytes left in the buffer.
        available: usize,
    },

    /// The header states a payload longer than any record may have.
    #[error("record length {len} exceeds the maximum of {MAX_PAYLOAD_LEN}")]
    LengthTooLarge {
        /// The length in the header.
        len: u32,
    },

    /// The payload would run past the end of the buffer.
    #[error("record length {len} runs past the end ({available} payload bytes left)")]
    LengthPastEnd {
        /// The length in the header.
        len: u32,
        /// The payload bytes left in the buffer.
        available: usize,
    },

    /// The record's bytes do not match their checksum.
    #[error("record checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the bytes found.
        computed: u32,
    },
}

// ---------------------------------------------------------------------------------------------
// Segment header
// ---------------------------------------------------------------------------------------------

/// Encodes a segment header (always [`FORMAT_VERSION`]).
pub fn encode_segment_header(header: &SegmentHeader) -> [u8; SEGMENT_HEADER_LEN] {
    encode_segment_header_with_version(header, FORMAT_VERSION)
}

fn encode_segment_header_with_version(
    header: &SegmentHeader,
    version: u32,
) -> [u8; SEGMENT_HEADER_LEN] {
    let mut out = [0u8; SEGMENT_HEADER_LEN];
    out[0..8].copy_from_slice(&SEGMENT_MAGIC);
    out[8..12].copy_from_slice(&version.to_le_bytes());
    out[12..20].copy_from_slice(&header.sequence.to_le_bytes());
    out[20..28].copy_from_slice(&header.first_index.0.to_le_bytes());
    let crc = crc32c::crc32c(&out[..SEGMENT_HEADER_CRC_AT]);
    out[SEGMENT_HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes the segment header at the start of `buf`; bytes after the first
/// [`SEGMENT_HEADER_LEN`] are ignored, so the whole file may be passed.
pub fn decode_segment_header(buf: &[u8]) -> Result<SegmentHeader, RecordError> {
    let Some(bytes) = buf.first_chunk::<SEGMENT_HEADER_LEN>() else {
        return Err(RecordError::HeaderTooShort { len: buf.len() });
    };
    let mut reader = Reader::new(bytes);
    let magic = reader.array::<8>().unwrap_or_default();
    if magic != SEGMENT_MAGIC {
        return Err(RecordError::BadMagic { found: magic });
    }
    let version = reader.u32().unwrap_or_default();
    if version != FORMAT_VERSION {
        return Err(RecordError::UnknownVersion { version });
    }
    let sequence = reader.u64().unwrap_or_default();
    let first_index = LogIndex(reader.u64().unwrap_or_default());
    let stored = reader.u32().unwrap_or_default();
    let computed = crc32c::crc32c(&bytes[..SEGMENT_HEADER_CRC_AT]);
    if stored != computed {
        return Err(RecordError::HeaderChecksum { stored, computed });
    }
    Ok(SegmentHeader { sequence, first_index })
}

// ---------------------------------------------------------------------------------------------
// Records: encoding
// ---------------------------------------------------------------------------------------------

/// Appends one encoded record to `out`. On error nothing is appended.
pub fn encode_record(record: &WalRecord, out: &mut Vec<u8>) -> Result<(), RecordError> {
    let payload_len = record.payload_len();
    if payload_len > MAX_PAYLOAD_LEN {
        return Err(RecordError::RecordTooLarge { len: payload_len });
    }
    if let WalRecord::HardState(HardState { vote: Some(NodeId(0)), .. }) = record {
        return Err(RecordError::VoteForNodeZero);
    }
    let tag = record.kind().tag();
    let start = out.len();
    out.reserve(RECORD_HEADER_LEN + payload_len);
    // `payload_len <= MAX_PAYLOAD_LEN` fits in a u32.
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    out.push(tag);
    out.extend_from_slice(&[0; 4]); // checksum, filled in once the payload is written
    let payload_start = out.len();
    match record {
        WalRecord::Entry(entry) => {
            out.extend_from_slice(&entry.term.0.to_le_bytes());
            out.extend_from_slice(&entry.index.0.to_le_bytes());
            out.push(entry_kind_byte(entry.kind));
            out.extend_from_slice(&entry.data);
        }
        WalRecord::HardState(hard_state) => {
            out.extend_from_slice(&hard_state.term.0.to_le_bytes());
            out.extend_from_slice(&hard_state.vote.map_or(0, |v| v.0).to_le_bytes());
            out.extend_from_slice(&hard_state.commit.0.to_le_bytes());
        }
        WalRecord::Truncate(index) => out.extend_from_slice(&index.0.to_le_bytes()),
        WalRecord::SnapshotMark(meta) => {
            out.extend_from_slice(&meta.index.0.to_le_bytes());
            out.extend_from_slice(&meta.term.0.to_le_bytes());
        }
    }
    debug_assert_eq!(out.len() - payload_start, payload_len);
    let crc = record_crc(tag, &out[payload_start..]);
    out[start + 5..payload_start].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn entry_kind_byte(kind: EntryKind) -> u8 {
    match kind {
        EntryKind::Normal => 0,
        EntryKind::Config => 1,
    }
}

/// The masked CRC32C stored in a record header: over the type byte, then the payload.
fn record_crc(tag: u8, payload: &[u8]) -> u32 {
    mask_crc(crc32c::crc32c_append(crc32c::crc32c(&[tag]), payload))
}

fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

// ---------------------------------------------------------------------------------------------
// Records: decoding
// ---------------------------------------------------------------------------------------------

/// Decodes the records in `buf` (a segment's bytes after its header). Never panics.
pub fn decode_records(buf: &[u8]) -> DecodeOutcome {
    decode_records_with_budget(buf, RESYNC_HASH_BUDGET)
}

/// [`decode_records`] with an explicit resync budget, so tests can exhaust it cheaply.
fn decode_records_with_budget(buf: &[u8], resync_budget: usize) -> DecodeOutcome {
    let mut records = Vec::new();
    let mut offset = 0;
    let end = loop {
        if offset == buf.len() {
            break DecodeEnd::Clean;
        }
        match frame_at(buf, offset) {
            Frame::Intact { tag, payload } => match decode_payload(tag, payload) {
                Ok(record) => {
                    let encoded_len = RECORD_HEADER_LEN + payload.len();
                    records.push(DecodedRecord { offset, encoded_len, record });
                    offset += encoded_len;
                }
                Err(reason) => break DecodeEnd::Corrupt { offset, reason },
            },
            Frame::Damaged(damage) => break classify_damage(buf, offset, damage, resync_budget),
        }
    };
    DecodeOutcome { records, end }
}

/// A record header's view of the bytes at some offset.
enum Frame<'a> {
    /// Complete, within limits and checksum-valid; the tag and payload are not yet validated.
    Intact {
        tag: u8,
        payload: &'a [u8],
    },
    Damaged(Damage),
}

struct RecordHeader {
    len: u32,
    tag: u8,
    crc: u32,
}

fn read_record_header(buf: &[u8], offset: usize) -> Option<RecordHeader> {
    let mut reader = Reader::new(buf.get(offset..)?);
    Some(RecordHeader { len: reader.u32()?, tag: reader.u8()?, crc: reader.u32()? })
}

/// The payload a header at `offset` claims, if it is within limits and within the buffer.
fn claimed_payload(buf: &[u8], offset: usize, len: u32) -> Result<&[u8], Damage> {
    let start = offset + RECORD_HEADER_LEN;
    let available = buf.len() - start;
    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
    if len_usize > MAX_PAYLOAD_LEN {
        return Err(Damage::LengthTooLarge { len });
    }
    if len_usize > available {
        return Err(Damage::LengthPastEnd { len, available });
    }
    Ok(&buf[start..start + len_usize])
}

fn frame_at(buf: &[u8], offset: usize) -> Frame<'_> {
    let Some(header) = read_record_header(buf, offset) else {
        return Frame::Damaged(Damage::IncompleteHeader {
            available: buf.len().saturating_sub(offset),
        });
    };
    let payload = match claimed_payload(buf, offset, header.len) {
        Ok(payload) => payload,
        Err(damage) => return Frame::Damaged(damage),
    };
    let computed = record_crc(header.tag, payload);
    if computed != header.crc {
        return Frame::Damaged(Damage::ChecksumMismatch { stored: header.crc, computed });
    }
    Frame::Intact { tag: header.tag, payload }
}

/// Applies rules 3-5 of the torn-versus-corrupt rule to a damaged record at `offset`.
fn classify_damage(buf: &[u8], offset: usize, damage: Damage, budget: usize) -> DecodeEnd {
    let rest = &buf[offset..];
    if rest.iter().all(|&b| b == 0) {
        return DecodeEnd::ZeroFilled { offset };
    }
    match find_intact_record_after(buf, offset, budget) {
        Resync::Found(next_valid) => {
            DecodeEnd::Corrupt { offset, reason: CorruptReason::Damaged { damage, next_valid } }
        }
        Resync::NotFound => DecodeEnd::TornTail { offset },
        Resync::OutOfBudget => {
            DecodeEnd::Corrupt { offset, reason: CorruptReason::ResyncBudgetExhausted { damage } }
        }
    }
}

enum Resync {
    Found(usize),
    NotFound,
    OutOfBudget,
}

/// Looks for an intact, well-formed record at any offset after `damaged_at`. Cheap structural
/// checks (known tag, payload size fits the type and the buffer) run before the checksum, and
/// every checksummed byte is charged to `budget`.
fn find_intact_record_after(buf: &[u8], damaged_at: usize, mut budget: usize) -> Resync {
    // A record needs at least a full header, so later offsets cannot hold one.
    let last_start = match buf.len().checked_sub(RECORD_HEADER_LEN) {
        Some(last) => last,
        None => return Resync::NotFound,
    };
    for candidate in damaged_at + 1..=last_start {
        let Some(header) = read_record_header(buf, candidate) else { continue };
        let Some(kind) = RecordKind::from_tag(header.tag) else { continue };
        let Ok(payload) = claimed_payload(buf, candidate, header.len) else { continue };
        if !kind.payload_len_ok(payload.len()) {
            continue;
        }
        let cost = payload.len() + 1;
        if cost > budget {
            return Resync::OutOfBudget;
        }
        budget -= cost;
        if record_crc(header.tag, payload) == header.crc {
            return Resync::Found(candidate);
        }
    }
    Resync::NotFound
}

/// Decodes a checksum-valid payload; any failure here is corruption, never a torn write.
fn decode_payload(tag: u8, payload: &[u8]) -> Result<WalRecord, CorruptReason> {
    let Some(kind) = RecordKind::from_tag(tag) else {
        return Err(CorruptReason::UnknownType { tag });
    };
    let bad_len = || CorruptReason::BadPayloadLen { kind, len: payload.len() };
    if !kind.payload_len_ok(payload.len()) {
        return Err(bad_len());
    }
    let mut reader = Reader::new(payload);
    let record = match kind {
        RecordKind::Entry => {
            let term = Term(reader.u64().ok_or_else(bad_len)?);
            let index = LogIndex(reader.u64().ok_or_else(bad_len)?);
            let kind = match reader.u8().ok_or_else(bad_len)? {
                0 => EntryKind::Normal,
                1 => EntryKind::Config,
                byte => return Err(CorruptReason::UnknownEntryKind { index, byte }),
            };
            let data = Bytes::copy_from_slice(reader.rest());
            if kind == EntryKind::Config {
                if let Err(e) = ClusterConfig::decode(&data) {
                    return Err(CorruptReason::BadConfigEntry { index, reason: e.to_string() });
                }
            }
            WalRecord::Entry(Entry { term, index, kind, data })
        }
        RecordKind::HardState => {
            let term = Term(reader.u64().ok_or_else(bad_len)?);
            let vote = match reader.u64().ok_or_else(bad_len)? {
                0 => None,
                node => Some(NodeId(node)),
            };
            let commit = LogIndex(reader.u64().ok_or_else(bad_len)?);
            WalRecord::HardState(HardState { term, vote, commit })
        }
        RecordKind::Truncate => WalRecord::Truncate(LogIndex(reader.u64().ok_or_else(bad_len)?)),
        RecordKind::SnapshotMark => {
            let index = LogIndex(reader.u64().ok_or_else(bad_len)?);
            let term = Term(reader.u64().ok_or_else(bad_len)?);
            WalRecord::SnapshotMark(SnapshotMeta { index, term })
        }
    };
    Ok(record)
}

/// Reads little-endian integers off the front of a slice without ever panicking: running out
/// of bytes yields `None`.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.rest.split_first_chunk::<N>()?;
        self.rest = tail;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

#[cfg(test)]
mod tests;
