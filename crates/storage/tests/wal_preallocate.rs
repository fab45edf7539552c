//! WalStorage with preallocated segments: batches are written into zero-filled, synced space
//! after the data, and recovery takes an all-zero tail as the clean end of the data.

mod common;

use bytes::Bytes;
use common::TempDir;
use kvraft_raft::{
    DetRng, Entry, HardState, LogIndex, MemStorage, NodeId, PersistBatch, Storage, Term,
};
use kvraft_storage::record::{
    decode_records, encode_record, encode_segment_header, DecodeEnd, SegmentHeader, WalRecord,
    SEGMENT_HEADER_LEN,
};
use kvraft_storage::wal::segment_file_name;
use kvraft_storage::{
    CrashPolicy, Disk, FaultPlan, FileDisk, SimDisk, WalConfig, WalError, WalStorage,
};

fn config(segment_size: u64, preallocate_bytes: u64) -> WalConfig {
    WalConfig { segment_size, preallocate_bytes }
}

fn entry(index: u64, len: usize) -> Entry {
    Entry {
        term: Term(1),
        index: LogIndex(index),
        kind: Default::default(),
        data: Bytes::from(vec![index as u8 | 1; len]),
    }
}

fn hard_state(commit: u64) -> HardState {
    HardState { term: Term(1), vote: Some(NodeId(1)), commit: LogIndex(commit) }
}

/// Persists entries `from..=to` (one batch each, `len` data bytes) to the WAL and the model,
/// calling `preallocate` after each, as the drivers do.
fn persist_range<D: Disk>(
    wal: &mut WalStorage<D>,
    model: &mut MemStorage,
    from: u64,
    to: u64,
    len: usize,
) {
    for i in from..=to {
        let entries = vec![entry(i, len)];
        let batch =
            PersistBatch { hard_state: Some(hard_state(i - 1)), snapshot: None, entries: &entries };
        model.persist(batch).unwrap();
        wal.persist(batch).unwrap();
        wal.preallocate().unwrap();
    }
}

/// A WAL on a SimDisk holding entries `1..=n`, preallocating `preallocate_bytes`.
fn build(n: u64, segment_size: u64, preallocate_bytes: u64) -> (WalStorage<SimDisk>, MemStorage) {
    let mut model = MemStorage::new();
    let mut wal =
        WalStorage::open_with(SimDisk::new(5), config(segment_size, preallocate_bytes)).unwrap();
    persist_range(&mut wal, &mut model, 1, n, 40);
    (wal, model)
}

fn last_segment<D: Disk>(wal: &WalStorage<D>) -> String {
    wal.segment_files().last().unwrap().clone()
}

/// Where the records of segment `name` end (relative to the file), and whether zeros follow.
fn data_end(disk: &SimDisk, name: &str) -> (u64, bool) {
    let data = disk.read(name).unwrap();
    let outcome = decode_records(&data[SEGMENT_HEADER_LEN..]);
    let zero_filled = matches!(outcome.end, DecodeEnd::ZeroFilled { .. });
    ((SEGMENT_HEADER_LEN + outcome.valid_len()) as u64, zero_filled)
}

/// Encoded records, for writing partial or unterminated batches by hand.
fn encode(records: &[WalRecord]) -> Vec<u8> {
    let mut buf = Vec::new();
    for record in records {
        encode_record(record, &mut buf).unwrap();
    }
    buf
}

#[test]
fn zero_filled_tail_in_the_last_segment_is_the_clean_end() {
    let (wal, mut model) = build(5, 64 << 20, 4096);
    let seg = last_segment(&wal);
    let (data_len, file_len) = wal.current_segment_lengths();
    assert!(file_len >= data_len + 4096, "{data_len} {file_len}");
    assert_eq!(wal.disk().file_len(&seg).unwrap(), file_len);
    assert_eq!(data_end(wal.disk(), &seg), (data_len, true));

    let mut wal = WalStorage::open_with(wal.into_disk(), config(64 << 20, 4096)).unwrap();
    assert_eq!(&wal.recover().unwrap(), model.state());
    assert_eq!(wal.recovery_report().truncated, None);
    assert_eq!(wal.recovery_report().segments, vec![seg.clone()]);
    assert_eq!(wal.disk().file_len(&seg).unwrap(), file_len, "recovery shrank the file");
    assert_eq!(wal.current_segment_lengths(), (data_len, file_len));

    // New writes continue at the end of the data, inside the prepared space.
    persist_range(&mut wal, &mut model, 6, 8, 40);
    let (new_data_len, new_file_len) = wal.current_segment_lengths();
    assert!(new_data_len > data_len);
    assert_eq!(new_file_len, file_len, "the writes fitted in the preallocated space");
    assert_eq!(data_end(wal.disk(), &seg), (new_data_len, true));

    let reopened = WalStorage::open_with(wal.into_disk(), config(64 << 20, 4096)).unwrap();
    assert_eq!(&reopened.recover().unwrap(), model.state());
    assert_eq!(reopened.recover().unwrap().entries.len(), 8);
    assert_eq!(reopened.recovery_report().truncated, None);
}

#[test]
fn zero_filled_tails_in_non_last_segments_are_clean_ends() {
    // Each 300-byte segment fills after a few batches and keeps its unused space.
    let (wal, model) = build(20, 300, 256);
    let segments = wal.segment_files();
    assert!(segments.len() >= 3, "{segments:?}");
    for name in &segments[..segments.len() - 1] {
        let (end, zero_filled) = data_end(wal.disk(), name);
        assert!(zero_filled, "{name} has no zero-filled tail");
        assert!(wal.disk().file_len(name).unwrap() > end, "{name}");
    }
    let lengths: Vec<u64> = segments.iter().map(|n| wal.disk().file_len(n).unwrap()).collect();
    let reopened = WalStorage::open_with(wal.into_disk(), config(300, 256)).unwrap();
    assert_eq!(&reopened.recover().unwrap(), model.state());
    assert_eq!(reopened.recovery_report().segments, segments);
    assert_eq!(reopened.recovery_report().truncated, None);
    let after: Vec<u64> = segments.iter().map(|n| reopened.disk().file_len(n).unwrap()).collect();
    assert_eq!(after, lengths);
}

#[test]
fn torn_write_into_preallocated_space_is_truncated_and_reported() {
    let (wal, model) = build(3, 64 << 20, 4096);
    let seg = last_segment(&wal);
    let (data_len, file_len) = wal.current_segment_lengths();
    let mut disk = wal.into_disk();
    // Half of a further batch in the zero-filled space: a whole Entry, then a torn HardState.
    // (Torn inside its vote: had only trailing zero bytes of it been lost, the zeros already
    // there would complete it, and the batch would be whole.)
    let mut buf = encode(&[WalRecord::Entry(entry(4, 40)), WalRecord::HardState(hard_state(3))]);
    buf.truncate(buf.len() - 20);
    disk.write_at(&seg, data_len, &buf).unwrap();
    disk.sync_data(&seg).unwrap();
    assert_eq!(disk.file_len(&seg).unwrap(), file_len);

    let mut wal = WalStorage::open_with(disk, config(64 << 20, 4096)).unwrap();
    let tail = wal.recovery_report().truncated.clone().expect("truncation reported");
    assert_eq!(tail.file, seg);
    assert_eq!(tail.offset, data_len);
    assert_eq!(tail.dropped_bytes, file_len - data_len);
    assert_eq!(wal.disk().file_len(&seg).unwrap(), data_len);
    assert_eq!(&wal.recover().unwrap(), model.state());
    assert_eq!(wal.current_segment_lengths(), (data_len, data_len));

    // The WAL carries on, preallocating again.
    let mut model = model;
    persist_range(&mut wal, &mut model, 4, 5, 40);
    let (data_len, file_len) = wal.current_segment_lengths();
    assert!(file_len >= data_len + 4096);
    let reopened = WalStorage::open_with(wal.into_disk(), config(64 << 20, 4096)).unwrap();
    assert_eq!(&reopened.recover().unwrap(), model.state());
    assert_eq!(reopened.recovery_report().truncated, None);
}

#[test]
fn crash_during_a_write_into_preallocated_space_keeps_the_batch_whole_or_not_at_all() {
    let (wal, model) = build(3, 64 << 20, 4096);
    let before = model.state().clone();
    let mut after_model = model.clone();
    let mut wal = wal;
    let entries = vec![entry(4, 200), entry(5, 200)];
    let batch = PersistBatch { hard_state: Some(hard_state(3)), snapshot: None, entries: &entries };
    after_model.persist(batch).unwrap();
    wal.write_batches(&[batch]).unwrap();
    let (data_len, file_len) = wal.current_segment_lengths();
    let (mut torn, mut lost, mut kept) = (0, 0, 0);
    for seed in 0..300 {
        let mut disk = wal.disk().clone();
        disk.crash_with(&mut DetRng::new(seed), CrashPolicy::TORN_PREFIX);
        // The write overwrote synced zeros: the file keeps its length whatever survived.
        assert_eq!(disk.file_len(&last_segment(&wal)).unwrap(), file_len, "seed {seed}");
        let reopened = WalStorage::open_with(disk, config(64 << 20, 4096)).unwrap();
        let state = reopened.recover().unwrap();
        if &state == after_model.state() {
            kept += 1;
            assert_eq!(reopened.current_segment_lengths().0, data_len);
        } else {
            assert_eq!(state, before, "seed {seed}: neither before nor after");
            if reopened.recovery_report().truncated.is_some() {
                torn += 1;
            } else {
                lost += 1;
            }
        }
    }
    assert!(torn > 0 && lost > 0 && kept > 0, "torn {torn} lost {lost} kept {kept}");
}

#[test]
fn unterminated_batch_followed_by_zeros_is_cut() {
    let (wal, model) = build(3, 64 << 20, 4096);
    let seg = last_segment(&wal);
    let (data_len, file_len) = wal.current_segment_lengths();
    let mut disk = wal.into_disk();
    // Complete records, but no closing HardState: the batch never committed.
    let buf = encode(&[WalRecord::Entry(entry(4, 40)), WalRecord::Entry(entry(5, 40))]);
    disk.write_at(&seg, data_len, &buf).unwrap();
    disk.sync_data(&seg).unwrap();
    assert_eq!(data_end(&disk, &seg), (data_len + buf.len() as u64, true));

    let wal = WalStorage::open_with(disk, config(64 << 20, 4096)).unwrap();
    let tail = wal.recovery_report().truncated.clone().expect("unterminated batch cut");
    assert_eq!((tail.file.as_str(), tail.offset), (seg.as_str(), data_len));
    assert_eq!(tail.dropped_bytes, file_len - data_len);
    assert_eq!(&wal.recover().unwrap(), model.state());
    assert_eq!(wal.disk().file_len(&seg).unwrap(), data_len);
}

#[test]
fn unterminated_batch_followed_by_zeros_in_a_non_last_segment_is_an_error() {
    let (wal, _) = build(20, 300, 256);
    let first = wal.segment_files()[0].clone();
    let mut disk = wal.into_disk();
    let (end, zero_filled) = data_end(&disk, &first);
    assert!(zero_filled);
    let buf = encode(&[WalRecord::Entry(entry(99, 10))]);
    disk.write_at(&first, end, &buf).unwrap();
    let err = WalStorage::open_with(disk, config(300, 256)).unwrap_err();
    assert_eq!(err, WalError::TornNotLast { file: first, offset: end });
}

#[test]
fn lost_batches_at_the_end_of_a_non_last_segment_are_caught() {
    // Zeroes from a record boundary to the end look exactly like preallocated space; the
    // next segment's header, which names the index its log continues from, gives them away.
    let (wal, _) = build(20, 300, 256);
    let first = wal.segment_files()[0].clone();
    let second = wal.segment_files()[1].clone();
    let mut disk = wal.into_disk();
    let data = disk.read(&first).unwrap();
    let outcome = decode_records(&data[SEGMENT_HEADER_LEN..]);
    // The start of the last batch: the record after the second-to-last HardState.
    let hard_states: Vec<usize> = outcome
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r.record, WalRecord::HardState(_)))
        .map(|(i, _)| i)
        .collect();
    assert!(hard_states.len() >= 2);
    let prev = &outcome.records[hard_states[hard_states.len() - 2]];
    let cut = SEGMENT_HEADER_LEN + prev.offset + prev.encoded_len;
    let zeros = vec![0; data.len() - cut];
    disk.write_at(&first, cut as u64, &zeros).unwrap();
    let err = WalStorage::open_with(disk, config(300, 256)).unwrap_err();
    assert!(matches!(&err, WalError::Inconsistent { file, .. } if file == &second), "{err:?}");
}

#[test]
fn raft_state_size_excludes_preallocated_space() {
    let (wal, model) = build(4, 64 << 20, 1 << 20);
    let seg = last_segment(&wal);
    assert!(wal.disk().file_len(&seg).unwrap() > 1 << 20);
    // Computed from the documented encoding: hard state 24 bytes, an entry 20 plus its data.
    let expected = 24 + 4 * (20 + 40);
    assert_eq!(wal.raft_state_size(), expected);
    assert_eq!(model.raft_state_size(), expected);
    let reopened = WalStorage::open_with(wal.into_disk(), config(64 << 20, 1 << 20)).unwrap();
    assert_eq!(reopened.raft_state_size(), expected);
}

#[test]
fn preallocate_rolls_a_full_segment_over_ahead_of_the_next_batch() {
    let (mut wal, mut model) = build(1, 100, 64);
    // One 40-byte entry batch fills a 100-byte segment: `preallocate` already started the next.
    assert_eq!(wal.segment_files().len(), 2);
    assert_eq!(wal.current_segment_lengths(), (SEGMENT_HEADER_LEN as u64, 32 + 64));
    let creates = wal.disk().list().unwrap().len();
    let entries = vec![entry(2, 10)];
    let batch = PersistBatch { hard_state: Some(hard_state(1)), snapshot: None, entries: &entries };
    model.persist(batch).unwrap();
    wal.write_batches(&[batch]).unwrap();
    assert_eq!(wal.disk().list().unwrap().len(), creates, "the batch started no segment");
    wal.sync().unwrap();
    let reopened = WalStorage::open_with(wal.into_disk(), config(100, 64)).unwrap();
    assert_eq!(&reopened.recover().unwrap(), model.state());
}

#[test]
fn a_new_segment_without_its_preallocation_recovers() {
    // A rollover interrupted after the header was durable but before the zeros were written,
    // or with part of them written.
    for zeros in [0usize, 5, 100] {
        let (wal, model) = build(3, 64 << 20, 256);
        let mut disk = wal.into_disk();
        let name = segment_file_name(2);
        let header =
            encode_segment_header(&SegmentHeader { sequence: 2, first_index: LogIndex(4) });
        disk.create(&name).unwrap();
        disk.append(&name, &header).unwrap();
        disk.append(&name, &vec![0; zeros]).unwrap();
        disk.sync_data(&name).unwrap();
        disk.sync_dir().unwrap();
        let mut wal = WalStorage::open_with(disk, config(64 << 20, 256)).unwrap();
        assert_eq!(&wal.recover().unwrap(), model.state(), "{zeros}");
        assert_eq!(wal.recovery_report().truncated, None);
        assert_eq!(
            wal.current_segment_lengths(),
            (SEGMENT_HEADER_LEN as u64, (SEGMENT_HEADER_LEN + zeros) as u64)
        );
        let mut model = model;
        persist_range(&mut wal, &mut model, 4, 6, 40);
        assert_eq!(wal.segment_files().len(), 2);
        let reopened = WalStorage::open_with(wal.into_disk(), config(64 << 20, 256)).unwrap();
        assert_eq!(&reopened.recover().unwrap(), model.state());
    }
}

#[test]
fn a_batch_larger_than_the_prepared_space_extends_the_file() {
    let (mut wal, mut model) = build(2, 64 << 20, 128);
    let (data_len, file_len) = wal.current_segment_lengths();
    assert!(file_len - data_len >= 128);
    let entries = vec![entry(3, 1000)];
    let batch = PersistBatch { hard_state: Some(hard_state(2)), snapshot: None, entries: &entries };
    model.persist(batch).unwrap();
    wal.persist(batch).unwrap();
    let (data_len, file_len) = wal.current_segment_lengths();
    assert_eq!(data_len, file_len, "no zeros were written on the batch's path");
    wal.preallocate().unwrap();
    assert_eq!(wal.current_segment_lengths(), (data_len, data_len + 128));
    let reopened = WalStorage::open_with(wal.into_disk(), config(64 << 20, 128)).unwrap();
    assert_eq!(&reopened.recover().unwrap(), model.state());
}

#[test]
fn preallocate_extends_only_when_less_than_the_target_is_left() {
    let (mut wal, _) = build(1, 64 << 20, 1000);
    let writes = wal.disk().stats().writes;
    let syncs = wal.disk().stats().data_syncs;
    wal.preallocate().unwrap();
    assert_eq!(wal.disk().stats().writes, writes, "enough space: no zeros written");
    assert_eq!(wal.disk().stats().data_syncs, syncs);
    // Preallocation off: a no-op, and every batch extends the file.
    let (mut wal, _) = build(3, 64 << 20, 0);
    let (data_len, file_len) = wal.current_segment_lengths();
    assert_eq!(data_len, file_len);
    wal.preallocate().unwrap();
    assert_eq!(wal.current_segment_lengths(), (data_len, file_len));
}

#[test]
#[should_panic(expected = "preallocate before the previous write was synced")]
fn preallocate_between_write_and_sync_panics() {
    let (mut wal, _) = build(1, 64 << 20, 256);
    let entries = vec![entry(2, 10)];
    wal.write_batches(&[PersistBatch { hard_state: None, snapshot: None, entries: &entries }])
        .unwrap();
    let _ = wal.preallocate();
}

#[test]
fn failed_preallocation_poisons_the_wal() {
    for faults in [
        FaultPlan { write_error_per_mille: 1000, ..FaultPlan::NONE },
        FaultPlan { sync_error_per_mille: 1000, ..FaultPlan::NONE },
    ] {
        let (mut wal, _) = build(1, 64 << 20, 256);
        // Uses more than the space left beyond the target, so `preallocate` must extend.
        let entries = vec![entry(2, 200)];
        let batch = PersistBatch { hard_state: None, snapshot: None, entries: &entries };
        wal.persist(batch).unwrap();
        wal.disk_mut().set_faults(faults);
        let err = wal.preallocate().unwrap_err();
        assert!(matches!(err, WalError::Disk(_)), "{err:?}");
        assert!(wal.is_poisoned());
        wal.disk_mut().set_faults(FaultPlan::NONE);
        assert_eq!(wal.preallocate(), Err(WalError::Poisoned));
        let next = vec![entry(3, 1)];
        let batch = PersistBatch { hard_state: None, snapshot: None, entries: &next };
        assert_eq!(wal.persist(batch), Err(WalError::Poisoned));
    }
}

#[test]
fn file_disk_writes_into_preallocated_space_without_growing_the_file() {
    let dir = TempDir::new("wal-preallocate");
    let cfg = config(64 << 20, 64 << 10);
    let mut model = MemStorage::new();
    let mut wal = WalStorage::open_with(FileDisk::open(dir.path()).unwrap(), cfg).unwrap();
    let seg = last_segment(&wal);
    let os_len = || std::fs::metadata(dir.path().join(&seg)).unwrap().len();
    // A fresh segment is preallocated when it is started.
    assert_eq!(os_len(), SEGMENT_HEADER_LEN as u64 + (64 << 10));
    persist_range(&mut wal, &mut model, 1, 3, 300);
    let (data_len, file_len) = wal.current_segment_lengths();
    assert_eq!(os_len(), file_len);
    assert!(file_len >= data_len + (64 << 10), "{data_len} {file_len}");

    // A write and a sync inside the prepared space leave the file's length alone.
    for i in 4..=20 {
        let entries = vec![entry(i, 300)];
        let batch =
            PersistBatch { hard_state: Some(hard_state(i - 1)), snapshot: None, entries: &entries };
        model.persist(batch).unwrap();
        wal.write_batches(&[batch]).unwrap();
        wal.sync().unwrap();
        assert_eq!(os_len(), file_len, "batch {i} changed the file length");
    }
    assert!(wal.current_segment_lengths().0 > data_len);
    drop(wal);

    let wal = WalStorage::open_with(FileDisk::open(dir.path()).unwrap(), cfg).unwrap();
    assert_eq!(&wal.recover().unwrap(), model.state());
    assert_eq!(wal.recovery_report().truncated, None);
    assert_eq!(os_len(), file_len);
}
