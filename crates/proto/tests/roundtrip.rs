//! Round trips: domain -> wire -> domain gives back the original, and so does
//! domain -> wire -> bytes -> wire -> domain, for every Raft message body, peer batches, client
//! requests and replies.

mod support;

use std::fmt::Debug;

use kvraft_kv::{ClientRequest, Reply};
use kvraft_proto::v1;
use kvraft_proto::{KvRequest, PeerBatch};
use kvraft_raft::{Message, MessageBody, NodeId, Term};
use proptest::prelude::*;
use prost::Message as _;
use support::*;

/// `wire` survives encode -> decode unchanged.
fn bytes_round_trip<W: prost::Message + Default + PartialEq + Debug>(
    wire: &W,
) -> Result<W, TestCaseError> {
    let decoded = W::decode(wire.encode_to_vec().as_slice())
        .map_err(|e| TestCaseError::fail(format!("decode failed: {e}")))?;
    prop_assert_eq!(&decoded, wire);
    Ok(decoded)
}

fn check_message(m: Message) -> Result<(), TestCaseError> {
    let wire = v1::RaftMessage::from(m.clone());
    prop_assert_eq!(&Message::try_from(wire.clone()), &Ok(m.clone()));
    let decoded = bytes_round_trip(&wire)?;
    prop_assert_eq!(Message::try_from(decoded), Ok(m));
    Ok(())
}

/// Messages of any term between any two nodes, with a body from `body`.
fn messages<S: Strategy<Value = MessageBody>>(
    body: impl Fn(Term) -> S + Clone,
) -> impl Strategy<Value = Message> {
    (node_id(), node_id(), term()).prop_flat_map(move |(from, to, term)| {
        body(term).prop_map(move |body| Message { from, to, term, body })
    })
}

fn kind(m: &Message) -> &'static str {
    m.body.kind()
}

proptest! {
    #[test]
    fn vote_round_trips(m in messages(|_| (any::<bool>(), index(), term(), any::<bool>()).prop_map(
        |(pre_vote, last_log_index, last_log_term, leadership_transfer)|
            MessageBody::Vote { pre_vote, last_log_index, last_log_term, leadership_transfer }))) {
        check_message(m)?;
    }

    #[test]
    fn vote_response_round_trips(m in messages(|_| (any::<bool>(), any::<bool>()).prop_map(
        |(pre_vote, granted)| MessageBody::VoteResponse { pre_vote, granted }))) {
        check_message(m)?;
    }

    #[test]
    fn append_round_trips(m in messages(append)) {
        check_message(m)?;
    }

    #[test]
    fn append_response_round_trips(
        m in messages(|_| append_result().prop_map(MessageBody::AppendResponse))
    ) {
        check_message(m)?;
    }

    #[test]
    fn heartbeat_round_trips(m in messages(|_| (index(), any::<u64>()).prop_map(
        |(commit, read_round)| MessageBody::Heartbeat { commit, read_round }))) {
        check_message(m)?;
    }

    #[test]
    fn heartbeat_response_round_trips(m in messages(|_| any::<u64>().prop_map(|read_round| MessageBody::HeartbeatResponse { read_round }))) {
        check_message(m)?;
    }

    #[test]
    fn snapshot_chunk_round_trips(m in messages(|_| (snapshot_meta(), config_state(), num(), payload(), any::<bool>())
        .prop_map(|(meta, config, offset, data, done)| MessageBody::SnapshotChunk { meta, config, offset, data, done })))
    {
        check_message(m)?;
    }

    #[test]
    fn snapshot_response_round_trips(
        m in messages(|_| snapshot_result().prop_map(MessageBody::SnapshotResponse))
    ) {
        check_message(m)?;
    }

    /// The mixed strategy the other tests share also round-trips (and covers every variant).
    #[test]
    fn any_message_round_trips(m in message()) {
        prop_assert!(!kind(&m).is_empty());
        check_message(m)?;
    }

    #[test]
    fn peer_batch_round_trips(b in peer_batch()) {
        let wire = v1::MessageBatch::from(b.clone());
        prop_assert_eq!(&PeerBatch::try_from(wire.clone()), &Ok(b.clone()));
        let decoded = bytes_round_trip(&wire)?;
        prop_assert_eq!(PeerBatch::try_from(decoded), Ok(b));
    }

    #[test]
    fn client_request_round_trips(r in client_request()) {
        let wire = KvRequest::from(r.clone());
        prop_assert_eq!(wire.rpc(), match r.op {
            kvraft_kv::Op::Get { .. } => "Get",
            kvraft_kv::Op::Put { .. } => "Put",
            kvraft_kv::Op::Append { .. } => "Append",
        });
        prop_assert_eq!(&ClientRequest::try_from(wire.clone()), &Ok(r.clone()));
        let decoded = match &wire {
            KvRequest::Put(w) => KvRequest::Put(bytes_round_trip(w)?),
            KvRequest::Append(w) => KvRequest::Append(bytes_round_trip(w)?),
            KvRequest::Get(w) => KvRequest::Get(bytes_round_trip(w)?),
        };
        prop_assert_eq!(ClientRequest::try_from(decoded), Ok(r));
    }

    #[test]
    fn put_reply_round_trips(r in write_reply()) {
        let wire = v1::PutReply::try_from(r.clone()).expect("a write reply fits Put");
        prop_assert_eq!(&Reply::try_from(wire.clone()), &Ok(r.clone()));
        prop_assert_eq!(Reply::try_from(bytes_round_trip(&wire)?), Ok(r));
    }

    #[test]
    fn append_reply_round_trips(r in write_reply()) {
        let wire = v1::AppendReply::try_from(r.clone()).expect("a write reply fits Append");
        prop_assert_eq!(&Reply::try_from(wire.clone()), &Ok(r.clone()));
        prop_assert_eq!(Reply::try_from(bytes_round_trip(&wire)?), Ok(r));
    }

    #[test]
    fn get_reply_round_trips(r in get_reply()) {
        let wire = v1::GetReply::try_from(r.clone()).expect("a read reply fits Get");
        prop_assert_eq!(&Reply::try_from(wire.clone()), &Ok(r.clone()));
        prop_assert_eq!(Reply::try_from(bytes_round_trip(&wire)?), Ok(r));
    }

}

#[test]
fn roles_round_trip() {
    use kvraft_raft::Role;
    for role in [Role::Follower, Role::PreCandidate, Role::Candidate, Role::Leader] {
        let wire = v1::Role::from(role);
        assert_eq!(Role::try_from(wire), Ok(role));
        let status = v1::StatusReply { role: wire.into(), ..Default::default() };
        let decoded = v1::StatusReply::decode(status.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.domain_role(), Ok(role));
    }
}

#[test]
fn leader_hint_gets_node_id_and_address() {
    use kvraft_kv::KvError;
    let wire = v1::Error::from(KvError::WrongLeader { leader: Some(NodeId(3)) })
        .with_leader_address(|id| (id == NodeId(3)).then(|| "10.0.0.3:7000".to_string()));
    assert_eq!(wire.code(), v1::ErrorCode::NotLeader);
    assert_eq!(
        wire.leader_hint,
        Some(v1::LeaderHint { node_id: 3, address: "10.0.0.3:7000".into() })
    );
    assert!(!wire.message.is_empty());
    assert_eq!(KvError::try_from(wire), Ok(KvError::WrongLeader { leader: Some(NodeId(3)) }));

    // No hint, and nothing to fill in.
    let wire = v1::Error::from(KvError::WrongLeader { leader: None })
        .with_leader_address(|_| Some("unused:1".into()));
    assert_eq!(wire.leader_hint, None);
}

#[test]
fn status_leader_is_none_for_zero() {
    assert_eq!(v1::StatusReply::default().leader(), None);
    let s = v1::StatusReply { leader_id: 4, ..Default::default() };
    assert_eq!(s.leader(), Some(NodeId(4)));
}
