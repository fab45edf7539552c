//! Malformed wire messages give a `ConvertError`, never a panic: fixed cases for each rule, and
//! fuzzing of the decoders with arbitrary and mutated bytes.

mod support;

use bytes::Bytes;
use kvraft_kv::{ClientRequest, KvError, Outcome, Reply};
use kvraft_proto::v1::{self, raft_message as pbm};
use kvraft_proto::{ConvertError, OutcomeMismatch, PeerBatch};
use kvraft_raft::{LogIndex, Message, NodeId, Role, Term};
use proptest::collection::vec;
use proptest::prelude::*;
use prost::Message as _;

fn raft(term: u64, body: pbm::Body) -> v1::RaftMessage {
    v1::RaftMessage { from: 1, to: 2, term, body: Some(body) }
}

fn entry(term: u64, index: u64) -> v1::Entry {
    v1::Entry { term, index, data: Bytes::from_static(b"x"), kind: 0 }
}

fn append(prev_log_index: u64, prev_log_term: u64, entries: Vec<v1::Entry>) -> pbm::Body {
    pbm::Body::Append(pbm::Append { prev_log_index, prev_log_term, entries, leader_commit: 0 })
}

fn convert(m: v1::RaftMessage) -> Result<Message, ConvertError> {
    Message::try_from(m)
}

#[test]
fn message_without_body_is_refused() {
    let m = v1::RaftMessage { from: 1, to: 2, term: 3, body: None };
    assert_eq!(convert(m), Err(ConvertError::MissingField("RaftMessage.body")));
}

#[test]
fn zero_node_ids_are_refused() {
    let body = pbm::Body::HeartbeatResponse(pbm::HeartbeatResponse { read_round: 0 });
    let m = v1::RaftMessage { from: 0, ..raft(1, body.clone()) };
    assert_eq!(convert(m), Err(ConvertError::ZeroNodeId("RaftMessage.from")));
    let m = v1::RaftMessage { to: 0, ..raft(1, body) };
    assert_eq!(convert(m), Err(ConvertError::ZeroNodeId("RaftMessage.to")));
}

#[test]
fn responses_without_result_are_refused() {
    let m = raft(1, pbm::Body::AppendResponse(pbm::AppendResponse { result: None }));
    assert_eq!(convert(m), Err(ConvertError::MissingField("AppendResponse.result")));
    let m = raft(1, pbm::Body::SnapshotResponse(pbm::SnapshotResponse { result: None }));
    assert_eq!(convert(m), Err(ConvertError::MissingField("SnapshotResponse.result")));
}

#[test]
fn snapshot_chunk_without_meta_is_refused() {
    let chunk = pbm::SnapshotChunk {
        meta: None,
        offset: 0,
        data: Bytes::new(),
        done: true,
        config_index: 0,
        config: Bytes::new(),
    };
    let m = raft(1, pbm::Body::SnapshotChunk(chunk));
    assert_eq!(convert(m), Err(ConvertError::MissingField("SnapshotChunk.meta")));
}

#[test]
fn append_entries_must_be_consecutive() {
    let m = raft(5, append(3, 1, vec![entry(2, 4), entry(2, 6)]));
    assert_eq!(
        convert(m),
        Err(ConvertError::EntryIndexGap { position: 1, expected: LogIndex(5), found: LogIndex(6) })
    );
    let m = raft(5, append(3, 1, vec![entry(2, 3)]));
    assert!(matches!(convert(m), Err(ConvertError::EntryIndexGap { position: 0, .. })));
    // The empty log prefix has index 0; the first entry is 1.
    let m = raft(5, append(0, 0, vec![entry(1, 0)]));
    assert!(matches!(convert(m), Err(ConvertError::EntryIndexGap { .. })));
}

#[test]
fn append_entry_terms_must_fit() {
    // Decreasing.
    let m = raft(5, append(3, 1, vec![entry(3, 4), entry(2, 5)]));
    assert_eq!(
        convert(m),
        Err(ConvertError::EntryTermOutOfOrder {
            index: LogIndex(5),
            term: Term(2),
            min: Term(3),
            max: Term(5)
        })
    );
    // Below prev_log_term.
    let m = raft(5, append(3, 2, vec![entry(1, 4)]));
    assert!(matches!(convert(m), Err(ConvertError::EntryTermOutOfOrder { .. })));
    // Above the message's term.
    let m = raft(5, append(3, 2, vec![entry(6, 4)]));
    assert!(matches!(convert(m), Err(ConvertError::EntryTermOutOfOrder { .. })));
    // At the bounds is fine.
    let m = raft(5, append(3, 2, vec![entry(2, 4), entry(5, 5)]));
    assert!(convert(m).is_ok());
}

#[test]
fn append_past_the_last_index_is_refused() {
    let m = raft(5, append(u64::MAX, 1, vec![entry(1, 0)]));
    assert_eq!(convert(m), Err(ConvertError::IndexOverflow));
    let m = raft(5, append(u64::MAX - 1, 1, vec![entry(1, u64::MAX)]));
    assert!(convert(m).is_ok());
    let m = raft(5, append(u64::MAX, 1, vec![]));
    assert!(convert(m).is_ok());
}

fn heartbeat_from(from: u64, to: u64) -> v1::RaftMessage {
    v1::RaftMessage {
        from,
        to,
        term: 1,
        body: Some(pbm::Body::Heartbeat(pbm::Heartbeat { commit: 0, read_round: 0 })),
    }
}

#[test]
fn batch_header_is_checked() {
    let ok =
        v1::MessageBatch { cluster_id: 7, from: 1, to: 2, messages: vec![heartbeat_from(1, 2)] };
    let batch = PeerBatch::try_from(ok.clone()).unwrap();
    assert_eq!((batch.from, batch.to, batch.messages.len()), (NodeId(1), NodeId(2), 1));

    let b = v1::MessageBatch { cluster_id: 0, ..ok.clone() };
    assert_eq!(PeerBatch::try_from(b), Err(ConvertError::ZeroClusterId));
    let b = v1::MessageBatch { from: 0, ..ok.clone() };
    assert_eq!(PeerBatch::try_from(b), Err(ConvertError::ZeroNodeId("MessageBatch.from")));
    let b = v1::MessageBatch { to: 0, ..ok.clone() };
    assert_eq!(PeerBatch::try_from(b), Err(ConvertError::ZeroNodeId("MessageBatch.to")));
    let b = v1::MessageBatch {
        messages: vec![heartbeat_from(1, 2), heartbeat_from(3, 2)],
        ..ok.clone()
    };
    assert_eq!(
        PeerBatch::try_from(b),
        Err(ConvertError::SenderMismatch { batch: NodeId(1), message: NodeId(3) })
    );
    let b = v1::MessageBatch { messages: vec![heartbeat_from(1, 3)], ..ok.clone() };
    assert_eq!(
        PeerBatch::try_from(b),
        Err(ConvertError::RecipientMismatch { batch: NodeId(2), message: NodeId(3) })
    );
    // A bad message inside an otherwise good batch fails the batch.
    let b = v1::MessageBatch {
        messages: vec![v1::RaftMessage { body: None, ..heartbeat_from(1, 2) }],
        ..ok
    };
    assert_eq!(PeerBatch::try_from(b), Err(ConvertError::MissingField("RaftMessage.body")));
}

#[test]
fn client_requests_need_a_session() {
    let put = v1::PutRequest { client_id: 9, sequence: 1, key: "k".into(), value: "v".into() };
    assert!(ClientRequest::try_from(put.clone()).is_ok());
    let r = v1::PutRequest { client_id: 0, ..put.clone() };
    assert_eq!(ClientRequest::try_from(r), Err(ConvertError::ZeroClientId));
    let r = v1::PutRequest { sequence: 0, ..put };
    assert_eq!(ClientRequest::try_from(r), Err(ConvertError::ZeroSequence));
    let r = v1::AppendRequest { client_id: 0, sequence: 1, key: "k".into(), value: "v".into() };
    assert_eq!(ClientRequest::try_from(r), Err(ConvertError::ZeroClientId));
    let r = v1::GetRequest { client_id: 3, sequence: 0, key: "k".into() };
    assert_eq!(ClientRequest::try_from(r), Err(ConvertError::ZeroSequence));
}

fn error(code: i32, leader_hint: Option<v1::LeaderHint>) -> v1::Error {
    v1::Error { code, leader_hint, message: String::new() }
}

#[test]
fn errors_need_a_known_code() {
    for code in [0, 4, 99, -1, i32::MAX] {
        assert_eq!(
            KvError::try_from(error(code, None)),
            Err(ConvertError::InvalidEnumValue { field: "Error.code", value: code })
        );
    }
    let hint = v1::LeaderHint { node_id: 0, address: "a:1".into() };
    assert_eq!(
        KvError::try_from(error(v1::ErrorCode::NotLeader.into(), Some(hint))),
        Err(ConvertError::ZeroNodeId("LeaderHint.node_id"))
    );
    // A hint on another error is ignored.
    let hint = v1::LeaderHint { node_id: 0, address: String::new() };
    assert_eq!(
        KvError::try_from(error(v1::ErrorCode::Stale.into(), Some(hint))),
        Ok(KvError::Stale)
    );
}

#[test]
fn replies_need_a_result() {
    assert_eq!(
        Reply::try_from(v1::PutReply { result: None }),
        Err(ConvertError::MissingField("PutReply.result"))
    );
    assert_eq!(
        Reply::try_from(v1::AppendReply { result: None }),
        Err(ConvertError::MissingField("AppendReply.result"))
    );
    assert_eq!(
        Reply::try_from(v1::GetReply { result: None }),
        Err(ConvertError::MissingField("GetReply.result"))
    );
    let bad = v1::GetReply { result: Some(v1::get_reply::Result::Error(error(42, None))) };
    assert!(matches!(Reply::try_from(bad), Err(ConvertError::InvalidEnumValue { .. })));
}

#[test]
fn outcome_must_fit_the_rpc() {
    let value = Ok(Outcome::Value("v".into()));
    assert_eq!(
        v1::PutReply::try_from(value.clone()),
        Err(OutcomeMismatch { rpc: "Put", outcome: Outcome::Value("v".into()) })
    );
    assert!(v1::AppendReply::try_from(value).is_err());
    assert_eq!(
        v1::GetReply::try_from(Ok(Outcome::Done)),
        Err(OutcomeMismatch { rpc: "Get", outcome: Outcome::Done })
    );
    // Errors fit every rpc.
    assert!(v1::GetReply::try_from(Err::<Outcome, _>(KvError::Stale)).is_ok());
}

#[test]
fn roles_need_a_known_value() {
    assert!(Role::try_from(v1::Role::Unspecified).is_err());
    for role in [0, 5, -3] {
        let s = v1::StatusReply { role, ..Default::default() };
        assert_eq!(
            s.domain_role(),
            Err(ConvertError::InvalidEnumValue { field: "StatusReply.role", value: role })
        );
    }
}

/// Decodes `bytes` as `W` and converts it: either may fail, neither may panic.
fn decode_and_convert<W, D>(bytes: &[u8]) -> bool
where
    W: prost::Message + Default,
    D: TryFrom<W>,
{
    W::decode(bytes).ok().map(D::try_from).is_some_and(|r| r.is_ok())
}

fn decode_everything(bytes: &[u8]) {
    decode_and_convert::<v1::MessageBatch, PeerBatch>(bytes);
    decode_and_convert::<v1::RaftMessage, Message>(bytes);
    decode_and_convert::<v1::PutRequest, ClientRequest>(bytes);
    decode_and_convert::<v1::AppendRequest, ClientRequest>(bytes);
    decode_and_convert::<v1::GetRequest, ClientRequest>(bytes);
    decode_and_convert::<v1::PutReply, Reply>(bytes);
    decode_and_convert::<v1::AppendReply, Reply>(bytes);
    decode_and_convert::<v1::GetReply, Reply>(bytes);
    if let Ok(s) = v1::StatusReply::decode(bytes) {
        let _ = s.domain_role();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Arbitrary bytes into every decoder, then the conversion.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    /// Valid batches with bytes flipped, truncated or spliced: closer to real corruption, and
    /// far more likely than random bytes to reach the conversion with a half-valid message.
    #[test]
    fn mutated_batches_never_panic(
        batch in support::peer_batch(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = v1::MessageBatch::from(batch).encode_to_vec();
        if bytes.is_empty() {
            return Ok(());
        }
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        decode_everything(&bytes);
        let keep = cut.index(bytes.len() + 1);
        decode_everything(&bytes[..keep]);
    }
}
