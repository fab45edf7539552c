//! Tests of the WAL record codec: round trips, the torn-versus-corrupt verdicts the module docs
//! specify, and the segment header.

use super::*;
use kvraft_raft::DetRng;
use proptest::prelude::*;

// --- helpers ------------------------------------------------------------------------------

fn entry(term: u64, index: u64, data: &[u8]) -> WalRecord {
    WalRecord::Entry(Entry::normal(Term(term), LogIndex(index), Bytes::copy_from_slice(data)))
}

fn config_entry(term: u64, index: u64) -> WalRecord {
    let config = ClusterConfig::bootstrap([NodeId(1), NodeId(2), NodeId(3)]);
    WalRecord::Entry(Entry {
        term: Term(term),
        index: LogIndex(index),
        kind: EntryKind::Config,
        data: config.encode(),
    })
}

fn sample_records() -> Vec<WalRecord> {
    vec![
        entry(1, 1, b"set a 1"),
        WalRecord::HardState(HardState {
            term: Term(2),
            vote: Some(NodeId(3)),
            commit: LogIndex(1),
        }),
        entry(2, 2, b""),
        WalRecord::Truncate(LogIndex(2)),
        WalRecord::SnapshotMark(SnapshotMeta { index: LogIndex(1), term: Term(1) }),
        WalRecord::HardState(HardState { term: Term(3), vote: None, commit: LogIndex(2) }),
        config_entry(3, 2),
        entry(3, 3, &[0xAB; 40]),
    ]
}

/// A record whose checksum is right but whose entry kind byte is `kind_byte` and data `data`.
fn raw_entry_record(kind_byte: u8, data: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.extend_from_slice(&7u64.to_le_bytes());
    payload.push(kind_byte);
    payload.extend_from_slice(data);
    let mut out = Vec::new();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.push(RecordKind::Entry.tag());
    out.extend_from_slice(&record_crc(RecordKind::Entry.tag(), &payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

#[test]
fn an_unknown_entry_kind_or_an_unreadable_config_is_corruption() {
    let outcome = decode_records(&raw_entry_record(7, b"x"));
    assert_eq!(
        outcome.end,
        DecodeEnd::Corrupt {
            offset: 0,
            reason: CorruptReason::UnknownEntryKind { index: LogIndex(7), byte: 7 }
        }
    );
    let outcome = decode_records(&raw_entry_record(1, b"not a configuration"));
    assert!(matches!(
        outcome.end,
        DecodeEnd::Corrupt { offset: 0, reason: CorruptReason::BadConfigEntry { .. } }
    ));
}

/// Encodes `records` back to back; returns the stream and each record's start offset.
fn encode_all(records: &[WalRecord]) -> (Vec<u8>, Vec<usize>) {
    let mut buf = Vec::new();
    let mut offsets = Vec::new();
    for record in records {
        offsets.push(buf.len());
        encode_record(record, &mut buf).expect("encodable record");
    }
    (buf, offsets)
}

fn decoded(outcome: &DecodeOutcome) -> Vec<WalRecord> {
    outcome.records.iter().map(|r| r.record.clone()).collect()
}

/// Invariants that hold for every input, valid or not.
fn check_outcome_invariants(buf: &[u8], outcome: &DecodeOutcome) {
    let mut expected_offset = 0;
    for r in &outcome.records {
        assert_eq!(r.offset, expected_offset, "records are contiguous from 0");
        assert!(r.encoded_len >= RECORD_HEADER_LEN);
        assert!(r.offset + r.encoded_len <= buf.len(), "record within the buffer");
        assert_eq!(r.encoded_len, r.record.encoded_len());
        // Whatever decodes must re-encode to exactly the same bytes.
        let mut again = Vec::new();
        encode_record(&r.record, &mut again).expect("decoded record re-encodes");
        assert_eq!(&again[..], &buf[r.offset..r.offset + r.encoded_len]);
        expected_offset = r.offset + r.encoded_len;
    }
    let valid_len = outcome.valid_len();
    match &outcome.end {
        DecodeEnd::Clean => assert_eq!(valid_len, buf.len()),
        DecodeEnd::ZeroFilled { offset } => {
            assert_eq!(*offset, valid_len);
            assert!(*offset < buf.len(), "a zero-filled tail has at least one byte");
            assert!(buf[*offset..].iter().all(|&b| b == 0), "a zero-filled tail is zeros");
        }
        DecodeEnd::TornTail { offset } => {
            assert_eq!(*offset, valid_len);
            assert!(*offset < buf.len(), "a torn tail has at least one byte");
            assert!(buf[*offset..].iter().any(|&b| b != 0), "a torn tail is not all zeros");
        }
        DecodeEnd::Corrupt { offset, reason } => {
            assert_eq!(*offset, valid_len);
            assert!(*offset < buf.len());
            if let CorruptReason::Damaged { next_valid, .. } = reason {
                assert!(*next_valid > *offset && *next_valid < buf.len());
            }
        }
    }
    // Truncating at the reported point always leaves a cleanly decodable prefix with the
    // same records: what recovery does after a torn tail.
    let prefix = decode_records(&buf[..valid_len]);
    assert_eq!(prefix.end, DecodeEnd::Clean);
    assert_eq!(prefix.records, outcome.records);
}

// --- fixed examples -----------------------------------------------------------------------

#[test]
fn empty_buffer_is_clean() {
    let outcome = decode_records(&[]);
    assert!(outcome.records.is_empty());
    assert_eq!(outcome.end, DecodeEnd::Clean);
}

#[test]
fn sample_stream_round_trips() {
    let records = sample_records();
    let (buf, offsets) = encode_all(&records);
    let outcome = decode_records(&buf);
    assert_eq!(outcome.end, DecodeEnd::Clean);
    assert_eq!(decoded(&outcome), records);
    let got: Vec<usize> = outcome.records.iter().map(|r| r.offset).collect();
    assert_eq!(got, offsets);
}

#[test]
fn record_layout_is_as_documented() {
    let mut buf = Vec::new();
    encode_record(&WalRecord::Truncate(LogIndex(0x0102_0304_0506_0708)), &mut buf).unwrap();
    assert_eq!(buf.len(), RECORD_HEADER_LEN + 8);
    assert_eq!(&buf[0..4], &8u32.to_le_bytes());
    assert_eq!(buf[4], RecordKind::Truncate.tag());
    let payload = 0x0102_0304_0506_0708u64.to_le_bytes();
    assert_eq!(&buf[9..], &payload);
    let mut covered = vec![RecordKind::Truncate.tag()];
    covered.extend_from_slice(&payload);
    let plain = crc32c::crc32c(&covered);
    assert_eq!(&buf[5..9], &mask_crc(plain).to_le_bytes());
    assert_ne!(mask_crc(plain), plain);
}

#[test]
fn vote_none_is_stored_as_zero() {
    let hs = HardState { term: Term(5), vote: None, commit: LogIndex(4) };
    let mut buf = Vec::new();
    encode_record(&WalRecord::HardState(hs), &mut buf).unwrap();
    assert_eq!(&buf[9 + 8..9 + 16], &[0; 8]);
    assert_eq!(decoded(&decode_records(&buf)), vec![WalRecord::HardState(hs)]);
}

#[test]
fn encode_rejects_vote_for_node_zero_and_writes_nothing() {
    let hs = HardState { term: Term(5), vote: Some(NodeId(0)), commit: LogIndex(4) };
    let mut buf = vec![7];
    assert_eq!(
        encode_record(&WalRecord::HardState(hs), &mut buf),
        Err(RecordError::VoteForNodeZero)
    );
    assert_eq!(buf, vec![7]);
}

#[test]
fn encode_rejects_oversized_entry_and_writes_nothing() {
    let fits = entry(1, 1, &vec![0u8; MAX_ENTRY_DATA_LEN]);
    let too_big = entry(1, 1, &vec![0u8; MAX_ENTRY_DATA_LEN + 1]);
    let mut buf = Vec::new();
    assert_eq!(
        encode_record(&too_big, &mut buf),
        Err(RecordError::RecordTooLarge { len: MAX_PAYLOAD_LEN + 1 })
    );
    assert!(buf.is_empty());
    encode_record(&fits, &mut buf).unwrap();
    assert_eq!(buf.len(), RECORD_HEADER_LEN + MAX_PAYLOAD_LEN);
    assert_eq!(decoded(&decode_records(&buf)), vec![fits]);
}

#[test]
fn oversized_length_is_torn_at_the_end_and_corrupt_before_valid_data() {
    let (valid, _) = encode_all(&sample_records()[..2]);
    let mut bad_header = Vec::new();
    bad_header.extend_from_slice(&((MAX_PAYLOAD_LEN + 1) as u32).to_le_bytes());
    bad_header.push(RecordKind::Entry.tag());
    bad_header.extend_from_slice(&[0xEE; 4]);

    let mut at_end = valid.clone();
    at_end.extend_from_slice(&bad_header);
    let outcome = decode_records(&at_end);
    assert_eq!(outcome.end, DecodeEnd::TornTail { offset: valid.len() });
    assert_eq!(outcome.records.len(), 2);

    let mut before_valid = at_end.clone();
    before_valid.extend_from_slice(&valid);
    let outcome = decode_records(&before_valid);
    assert_eq!(
        outcome.end,
        DecodeEnd::Corrupt {
            offset: valid.len(),
            reason: CorruptReason::Damaged {
                damage: Damage::LengthTooLarge { len: (MAX_PAYLOAD_LEN + 1) as u32 },
                next_valid: valid.len() + RECORD_HEADER_LEN,
            },
        }
    );
}

#[test]
fn checksum_valid_record_with_unknown_tag_is_corrupt_even_at_the_end() {
    let (mut buf, _) = encode_all(&sample_records()[..1]);
    let offset = buf.len();
    let payload = [1u8, 2, 3];
    buf.extend_from_slice(&3u32.to_le_bytes());
    buf.push(99);
    buf.extend_from_slice(&record_crc(99, &payload).to_le_bytes());
    buf.extend_from_slice(&payload);
    let outcome = decode_records(&buf);
    assert_eq!(
        outcome.end,
        DecodeEnd::Corrupt { offset, reason: CorruptReason::UnknownType { tag: 99 } }
    );
    assert_eq!(outcome.records.len(), 1);
}

#[test]
fn checksum_valid_record_with_wrong_payload_size_is_corrupt() {
    for (kind, len) in [
        (RecordKind::HardState, 23),
        (RecordKind::HardState, 25),
        (RecordKind::Truncate, 0),
        (RecordKind::SnapshotMark, 8),
        (RecordKind::Entry, 15),
    ] {
        let payload = vec![5u8; len];
        let mut buf = Vec::new();
        buf.extend_from_slice(&(len as u32).to_le_bytes());
        buf.push(kind.tag());
        buf.extend_from_slice(&record_crc(kind.tag(), &payload).to_le_bytes());
        buf.extend_from_slice(&payload);
        assert_eq!(
            decode_records(&buf).end,
            DecodeEnd::Corrupt { offset: 0, reason: CorruptReason::BadPayloadLen { kind, len } }
        );
    }
}

#[test]
fn zeroed_sector_spanning_records_before_valid_data_is_corrupt() {
    // Damage that covers the end of one record and the header of the next: the first
    // damaged record's length still points at garbage, so only the byte-by-byte search
    // finds the intact records further on.
    let records: Vec<WalRecord> = (1..=20).map(|i| entry(1, i, &[i as u8; 30])).collect();
    let (mut buf, offsets) = encode_all(&records);
    let zero_from = offsets[5] + 20;
    let zero_to = offsets[7] + 5;
    buf[zero_from..zero_to].fill(0);
    let outcome = decode_records(&buf);
    assert_eq!(outcome.records.len(), 5);
    match outcome.end {
        DecodeEnd::Corrupt { offset, reason: CorruptReason::Damaged { next_valid, .. } } => {
            assert_eq!(offset, offsets[5]);
            assert_eq!(next_valid, offsets[8]);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn torn_write_into_zero_filled_space_is_torn() {
    // A record written into preallocated space, torn after `keep` bytes: its first bytes,
    // then the zeros that were there. Only "nothing (non-zero) landed" is a clean end.
    let records = sample_records();
    let (buf, offsets) = encode_all(&records);
    let last = *offsets.last().unwrap();
    for keep in 0..buf.len() - last {
        let mut damaged = buf.clone();
        damaged[last + keep..].fill(0);
        damaged.resize(buf.len() + 100, 0);
        let outcome = decode_records(&damaged);
        let expected = if damaged[last..].iter().all(|&b| b == 0) {
            DecodeEnd::ZeroFilled { offset: last }
        } else {
            DecodeEnd::TornTail { offset: last }
        };
        assert_eq!(outcome.end, expected, "kept {keep}");
        assert_eq!(decoded(&outcome), records[..records.len() - 1]);
    }
    // The last record's length starts with a non-zero byte, so one byte is already torn.
    let mut one = buf[..last + 1].to_vec();
    one.resize(buf.len(), 0);
    assert_eq!(decode_records(&one).end, DecodeEnd::TornTail { offset: last });
}

#[test]
fn zero_filled_space_after_the_data_is_its_clean_end() {
    let records = sample_records();
    let (buf, _) = encode_all(&records);
    for zeros in [1, RECORD_HEADER_LEN - 1, RECORD_HEADER_LEN, 4096] {
        let mut padded = buf.clone();
        padded.resize(buf.len() + zeros, 0);
        let outcome = decode_records(&padded);
        assert_eq!(outcome.end, DecodeEnd::ZeroFilled { offset: buf.len() }, "{zeros}");
        assert_eq!(decoded(&outcome), records);
    }
    // Nothing but zeros: the data ends at 0.
    assert_eq!(decode_records(&[0; 100]).end, DecodeEnd::ZeroFilled { offset: 0 });
    // Zeros, then anything non-zero, is not a zero-filled tail.
    let mut tail = buf.clone();
    tail.extend_from_slice(&[0; 50]);
    tail.push(7);
    assert_eq!(decode_records(&tail).end, DecodeEnd::TornTail { offset: buf.len() });
}

#[test]
fn torn_entry_whose_data_embeds_a_valid_record_is_reported_corrupt() {
    // Documented limit of the rule: client data that happens to contain an intact WAL
    // record makes a torn final entry look like corruption. This errs towards stopping.
    let mut inner = Vec::new();
    encode_record(&WalRecord::Truncate(LogIndex(9)), &mut inner).unwrap();
    let mut data = inner.clone();
    data.extend_from_slice(&[0x55; 32]);
    let (buf, _) = encode_all(&[entry(1, 1, &data)]);
    let torn = &buf[..RECORD_HEADER_LEN + ENTRY_FIXED_LEN + inner.len() + 4];
    let outcome = decode_records(torn);
    assert!(
        matches!(
            outcome.end,
            DecodeEnd::Corrupt { offset: 0, reason: CorruptReason::Damaged { .. } }
        ),
        "{:?}",
        outcome.end
    );
}

#[test]
fn resync_budget_exhaustion_reports_corruption() {
    // A damaged record followed by many offsets that look like Entry headers with bad
    // checksums: each costs checksum work, and a small budget runs out before the end.
    let mut buf = vec![0xFFu8; RECORD_HEADER_LEN]; // damaged: length too large
    for _ in 0..64 {
        buf.extend_from_slice(&40u32.to_le_bytes());
        buf.push(RecordKind::Entry.tag());
        buf.extend_from_slice(&[0xAA; 4]); // wrong checksum
    }
    buf.extend_from_slice(&[0x11; 64]);
    let generous = decode_records_with_budget(&buf, RESYNC_HASH_BUDGET);
    assert_eq!(generous.end, DecodeEnd::TornTail { offset: 0 });
    let stingy = decode_records_with_budget(&buf, 100);
    assert!(
        matches!(
            stingy.end,
            DecodeEnd::Corrupt { offset: 0, reason: CorruptReason::ResyncBudgetExhausted { .. } }
        ),
        "{:?}",
        stingy.end
    );
}

// --- segment header -----------------------------------------------------------------------

#[test]
fn segment_header_round_trips_and_ignores_trailing_bytes() {
    let header = SegmentHeader { sequence: 0xDEAD_BEEF_0000_0001, first_index: LogIndex(42) };
    let bytes = encode_segment_header(&header);
    assert_eq!(&bytes[..8], b"KVRAFTWL");
    assert_eq!(&bytes[8..12], &2u32.to_le_bytes());
    assert_eq!(decode_segment_header(&bytes), Ok(header));
    let mut file = bytes.to_vec();
    file.extend_from_slice(&[0xAB; 100]);
    assert_eq!(decode_segment_header(&file), Ok(header));
}

#[test]
fn segment_header_too_short() {
    let bytes = encode_segment_header(&SegmentHeader { sequence: 1, first_index: LogIndex(1) });
    for len in 0..SEGMENT_HEADER_LEN {
        assert_eq!(decode_segment_header(&bytes[..len]), Err(RecordError::HeaderTooShort { len }));
    }
}

#[test]
fn segment_header_wrong_magic() {
    let mut bytes = encode_segment_header(&SegmentHeader { sequence: 1, first_index: LogIndex(1) });
    bytes[0] = b'X';
    assert!(matches!(decode_segment_header(&bytes), Err(RecordError::BadMagic { .. })));
}

#[test]
fn segment_header_unknown_version() {
    let header = SegmentHeader { sequence: 7, first_index: LogIndex(100) };
    // Version 1 (entries without a kind byte) included: read as version 2 it would shift every
    // entry's data by a byte.
    for version in [0, 1, 3, u32::MAX] {
        // A well-formed header (valid checksum) from some other version.
        let bytes = encode_segment_header_with_version(&header, version);
        assert_eq!(decode_segment_header(&bytes), Err(RecordError::UnknownVersion { version }));
    }
}

#[test]
fn segment_header_bad_checksum() {
    let header = SegmentHeader { sequence: 7, first_index: LogIndex(100) };
    let good = encode_segment_header(&header);
    // Any flipped bit after the version field, checksum included, is a checksum error.
    for bit in 12 * 8..SEGMENT_HEADER_LEN * 8 {
        let mut bytes = good;
        bytes[bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(decode_segment_header(&bytes), Err(RecordError::HeaderChecksum { .. })),
            "bit {bit}"
        );
    }
}

// --- property tests -----------------------------------------------------------------------

fn arb_entry_record() -> impl Strategy<Value = WalRecord> {
    (any::<u64>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..64))
        .prop_map(|(term, index, data)| entry(term, index, &data))
}

fn arb_hard_state() -> impl Strategy<Value = HardState> {
    (any::<u64>(), proptest::option::of(1..=u64::MAX), any::<u64>()).prop_map(
        |(term, vote, commit)| HardState {
            term: Term(term),
            vote: vote.map(NodeId),
            commit: LogIndex(commit),
        },
    )
}

fn arb_record() -> impl Strategy<Value = WalRecord> {
    prop_oneof![
        3 => arb_entry_record(),
        1 => arb_hard_state().prop_map(WalRecord::HardState),
        1 => any::<u64>().prop_map(|i| WalRecord::Truncate(LogIndex(i))),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(index, term)| {
            WalRecord::SnapshotMark(SnapshotMeta { index: LogIndex(index), term: Term(term) })
        }),
    ]
}

fn arb_stream(max: usize) -> impl Strategy<Value = Vec<WalRecord>> {
    proptest::collection::vec(arb_record(), 1..max)
}

/// Damage applied to a valid stream by the fuzz-style tests.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(usize),
    SetByte(usize, u8),
    Zero(usize, usize),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    AppendGarbage(Vec<u8>),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::FlipBit),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::SetByte(at, b)),
        (any::<usize>(), 0..600usize).prop_map(|(at, n)| Mutation::Zero(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 0..64usize).prop_map(|(at, n)| Mutation::Remove(at, n)),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Mutation::AppendGarbage),
    ]
}

fn apply(buf: &mut Vec<u8>, mutation: &Mutation) {
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % len };
    match mutation {
        Mutation::FlipBit(at) if !buf.is_empty() => {
            let bit = pos(*at, buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
        }
        Mutation::SetByte(at, b) if !buf.is_empty() => {
            let i = pos(*at, buf.len());
            buf[i] = *b;
        }
        Mutation::Zero(at, n) => {
            let from = pos(*at, buf.len() + 1);
            let to = (from + n).min(buf.len());
            buf[from..to].fill(0);
        }
        Mutation::Truncate(at) => buf.truncate(pos(*at, buf.len() + 1)),
        Mutation::Insert(at, bytes) => {
            let i = pos(*at, buf.len() + 1);
            buf.splice(i..i, bytes.iter().copied());
        }
        Mutation::Remove(at, n) => {
            let from = pos(*at, buf.len() + 1);
            let to = (from + n).min(buf.len());
            buf.drain(from..to);
        }
        Mutation::AppendGarbage(bytes) => buf.extend_from_slice(bytes),
        Mutation::FlipBit(_) | Mutation::SetByte(..) => {}
    }
}

proptest! {
    #[test]
    fn prop_every_record_round_trips(records in arb_stream(12)) {
        let (buf, offsets) = encode_all(&records);
        let outcome = decode_records(&buf);
        prop_assert_eq!(&outcome.end, &DecodeEnd::Clean);
        prop_assert_eq!(decoded(&outcome), records);
        let got: Vec<usize> = outcome.records.iter().map(|r| r.offset).collect();
        prop_assert_eq!(got, offsets);
        check_outcome_invariants(&buf, &outcome);
    }

    #[test]
    fn prop_segment_header_round_trips(sequence in any::<u64>(), first in any::<u64>()) {
        let header = SegmentHeader { sequence, first_index: LogIndex(first) };
        prop_assert_eq!(decode_segment_header(&encode_segment_header(&header)), Ok(header));
    }

    #[test]
    fn prop_truncation_at_every_offset_is_a_torn_tail(records in arb_stream(8)) {
        let (buf, offsets) = encode_all(&records);
        for cut in 0..=buf.len() {
            let outcome = decode_records(&buf[..cut]);
            // Records wholly before the cut survive; the one the cut lands in is torn.
            let complete = offsets
                .iter()
                .zip(&records)
                .take_while(|(o, r)| **o + r.encoded_len() <= cut)
                .count();
            prop_assert_eq!(decoded(&outcome), records[..complete].to_vec());
            let expected = if offsets.contains(&cut) || cut == buf.len() {
                DecodeEnd::Clean
            } else {
                DecodeEnd::TornTail { offset: offsets[complete] }
            };
            prop_assert_eq!(&outcome.end, &expected, "cut at {}", cut);
        }
    }

    #[test]
    fn prop_zero_filled_tail_is_the_clean_end(records in arb_stream(8), zeros in 1..200usize) {
        let (mut buf, _) = encode_all(&records);
        let end = buf.len();
        buf.resize(end + zeros, 0);
        let outcome = decode_records(&buf);
        prop_assert_eq!(&outcome.end, &DecodeEnd::ZeroFilled { offset: end });
        prop_assert_eq!(decoded(&outcome), records);
    }

    #[test]
    fn prop_any_flipped_bit_is_corrupt_before_valid_data_and_torn_at_the_end(
        records in proptest::collection::vec(arb_record(), 2..5),
    ) {
        let (buf, offsets) = encode_all(&records);
        for (i, &start) in offsets.iter().enumerate() {
            let is_last = i + 1 == records.len();
            for bit in start * 8..(start + records[i].encoded_len()) * 8 {
                let mut damaged = buf.clone();
                damaged[bit / 8] ^= 1 << (bit % 8);
                let outcome = decode_records(&damaged);
                prop_assert_eq!(decoded(&outcome), records[..i].to_vec());
                if is_last {
                    prop_assert_eq!(
                        &outcome.end, &DecodeEnd::TornTail { offset: start }, "bit {}", bit
                    );
                } else {
                    let is_corrupt_here = matches!(
                        outcome.end,
                        DecodeEnd::Corrupt { offset, reason: CorruptReason::Damaged { .. } }
                            if offset == start
                    );
                    prop_assert!(is_corrupt_here, "bit {}: {:?}", bit, outcome.end);
                }
            }
        }
    }

    #[test]
    fn prop_arbitrary_bytes_never_panic(
        buf in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let outcome = decode_records(&buf);
        check_outcome_invariants(&buf, &outcome);
        let _ = decode_segment_header(&buf);
    }

    #[test]
    fn prop_mutated_streams_never_panic(
        records in arb_stream(16),
        mutations in proptest::collection::vec(arb_mutation(), 1..6),
    ) {
        let (mut buf, _) = encode_all(&records);
        for mutation in &mutations {
            apply(&mut buf, mutation);
        }
        let outcome = decode_records(&buf);
        check_outcome_invariants(&buf, &outcome);
    }
}

// --- deterministic fuzz loop --------------------------------------------------------------

fn random_record(rng: &mut DetRng) -> WalRecord {
    match rng.below(6) {
        0 => WalRecord::HardState(HardState {
            term: Term(rng.next_u64()),
            vote: rng.chance(1, 2).then(|| NodeId(rng.range(1, u64::MAX))),
            commit: LogIndex(rng.next_u64()),
        }),
        1 => WalRecord::Truncate(LogIndex(rng.next_u64())),
        2 => WalRecord::SnapshotMark(SnapshotMeta {
            index: LogIndex(rng.next_u64()),
            term: Term(rng.next_u64()),
        }),
        _ => {
            let len = rng.below(80) as usize;
            let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            entry(rng.next_u64(), rng.next_u64(), &data)
        }
    }
}

fn random_mutation(rng: &mut DetRng) -> Mutation {
    let at = rng.next_u64() as usize;
    match rng.below(7) {
        0 => Mutation::FlipBit(at),
        1 => Mutation::SetByte(at, rng.next_u64() as u8),
        2 => Mutation::Zero(at, rng.below(600) as usize),
        3 => Mutation::Truncate(at),
        4 => Mutation::Insert(at, (0..rng.below(32)).map(|_| rng.next_u64() as u8).collect()),
        5 => Mutation::Remove(at, rng.below(64) as usize),
        _ => Mutation::AppendGarbage((0..rng.below(64)).map(|_| rng.next_u64() as u8).collect()),
    }
}

/// The fuzz properties above, run over a fixed-seed stream so CI always covers the same
/// 20 000 inputs: a third random bytes, two thirds mutated valid streams.
#[test]
fn deterministic_fuzz_never_panics() {
    let mut rng = DetRng::new(0x5EED_F3A1);
    let mut seen_corrupt = 0;
    let mut seen_torn = 0;
    for _ in 0..20_000 {
        let buf = if rng.chance(1, 3) {
            let len = rng.below(4096) as usize;
            (0..len).map(|_| rng.next_u64() as u8).collect()
        } else {
            let count = rng.range(1, 16);
            let records: Vec<WalRecord> = (0..count).map(|_| random_record(&mut rng)).collect();
            let (mut buf, _) = encode_all(&records);
            for _ in 0..rng.range(1, 5) {
                apply(&mut buf, &random_mutation(&mut rng));
            }
            buf
        };
        let outcome = decode_records(&buf);
        check_outcome_invariants(&buf, &outcome);
        match outcome.end {
            DecodeEnd::Corrupt { .. } => seen_corrupt += 1,
            DecodeEnd::TornTail { .. } => seen_torn += 1,
            DecodeEnd::Clean | DecodeEnd::ZeroFilled { .. } => {}
        }
    }
    // The generator must actually reach both failure verdicts, or the loop tests nothing.
    assert!(seen_corrupt > 1000 && seen_torn > 1000, "{seen_corrupt} {seen_torn}");
}
