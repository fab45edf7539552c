//! Proptest strategies for the domain types the wire carries. Every value generated is valid
//! (non-zero ids, well-formed Appends...), so it must survive a round trip through the wire.

// Each test binary uses a different subset.
#![allow(dead_code)]

use bytes::Bytes;
use kvraft_kv::{ClientId, ClientRequest, KvError, Op, Outcome, Reply, Sequence};
use kvraft_proto::{ClusterId, PeerBatch};
use kvraft_raft::{
    AppendResult, ClusterConfig, ConfigState, Entry, LogIndex, Message, MessageBody, NodeId,
    SnapshotMeta, SnapshotResult, Term, TransferRefusal,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// Numbers with the edges (0, 1, max) over-represented.
pub fn num() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), 0..1_000u64, any::<u64>()]
}

pub fn node_id() -> impl Strategy<Value = NodeId> {
    prop_oneof![1..8u64, Just(u64::MAX), 1..=u64::MAX].prop_map(NodeId)
}

pub fn index() -> impl Strategy<Value = LogIndex> {
    num().prop_map(LogIndex)
}

pub fn term() -> impl Strategy<Value = Term> {
    num().prop_map(Term)
}

pub fn payload() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

pub fn snapshot_meta() -> impl Strategy<Value = SnapshotMeta> {
    (index(), term()).prop_map(|(index, term)| SnapshotMeta { index, term })
}

/// An Append as a leader in `term` could send it: consecutive entries whose terms never
/// decrease and lie between `prev_log_term` and `term`.
pub fn append(term: Term) -> impl Strategy<Value = MessageBody> {
    (0..=term.0, vec((any::<u64>(), payload()), 0..6), 0..u64::MAX - 8, index()).prop_map(
        move |(prev_log_term, raw, prev_log_index, leader_commit)| {
            // Terms in [prev_log_term, term]; the span wraps to 0 when that is all of u64.
            let span = (term.0 - prev_log_term).wrapping_add(1);
            let mut terms: Vec<u64> = raw
                .iter()
                .map(|(r, _)| if span == 0 { *r } else { prev_log_term + r % span })
                .collect();
            terms.sort_unstable();
            let entries = raw
                .into_iter()
                .zip(terms)
                .zip(1u64..)
                .map(|(((_, data), t), i)| Entry {
                    term: Term(t),
                    index: LogIndex(prev_log_index + i),
                    kind: Default::default(),
                    data,
                })
                .collect();
            MessageBody::Append {
                prev_log_index: LogIndex(prev_log_index),
                prev_log_term: Term(prev_log_term),
                entries,
                leader_commit,
            }
        },
    )
}

pub fn append_result() -> impl Strategy<Value = AppendResult> {
    prop_oneof![
        index().prop_map(|match_index| AppendResult::Accepted { match_index }),
        (index(), index(), term()).prop_map(|(rejected_prev, hint_index, hint_term)| {
            AppendResult::Rejected { rejected_prev, hint_index, hint_term }
        }),
    ]
}

pub fn snapshot_result() -> impl Strategy<Value = SnapshotResult> {
    prop_oneof![
        index().prop_map(|match_index| SnapshotResult::Installed { match_index }),
        (index(), num()).prop_map(|(snapshot_index, offset)| SnapshotResult::NeedOffset {
            snapshot_index,
            offset
        }),
    ]
}

/// Every body variant, valid for a message of term `term`.
pub fn body(msg_term: Term) -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (any::<bool>(), index(), term(), any::<bool>()).prop_map(
            |(pre_vote, last_log_index, last_log_term, leadership_transfer)| {
                MessageBody::Vote { pre_vote, last_log_index, last_log_term, leadership_transfer }
            }
        ),
        (any::<bool>(), any::<bool>())
            .prop_map(|(pre_vote, granted)| MessageBody::VoteResponse { pre_vote, granted }),
        append(msg_term),
        append_result().prop_map(MessageBody::AppendResponse),
        (index(), any::<u64>())
            .prop_map(|(commit, read_round)| MessageBody::Heartbeat { commit, read_round }),
        any::<u64>().prop_map(|read_round| MessageBody::HeartbeatResponse { read_round }),
        (snapshot_meta(), config_state(), num(), payload(), any::<bool>()).prop_map(
            |(meta, config, offset, data, done)| MessageBody::SnapshotChunk {
                meta,
                config,
                offset,
                data,
                done
            }
        ),
        snapshot_result().prop_map(MessageBody::SnapshotResponse),
        any::<u64>().prop_map(|ctx| MessageBody::ReadIndexRequest { ctx }),
        (any::<u64>(), proptest::option::of(index()))
            .prop_map(|(ctx, index)| MessageBody::ReadIndexResponse { ctx, index }),
        index().prop_map(|last_index| MessageBody::TimeoutNow { last_index }),
        prop_oneof![
            Just(TransferRefusal::NotAVoter),
            Just(TransferRefusal::LogBehind),
            Just(TransferRefusal::SnapshotInFlight),
            Just(TransferRefusal::Removed),
        ]
        .prop_map(|reason| MessageBody::TimeoutNowRejected { reason }),
        index().prop_map(|config_index| MessageBody::Removed { config_index }),
    ]
}

/// A snapshot's configuration: none known, or a valid one of up to 5 voters and 3 learners.
pub fn config_state() -> impl Strategy<Value = ConfigState> {
    prop_oneof![
        Just(ConfigState::default()),
        (1u64..=5, 0u64..=3, index(), proptest::collection::vec("[a-z0-9.:]{0,12}", 8)).prop_map(
            |(voters, learners, index, addresses)| {
                let mut config = ClusterConfig::bootstrap((1..=voters).map(NodeId));
                let learner_ids: Vec<NodeId> =
                    (voters + 1..=voters + learners).map(NodeId).collect();
                config.membership = kvraft_raft::membership::Membership::joint(
                    (1..=voters).map(NodeId),
                    [],
                    learner_ids.iter().copied(),
                );
                config.next_id = NodeId(voters + learners + 1);
                for (id, address) in (1..=voters + learners).zip(addresses) {
                    config.addresses.insert(NodeId(id), address);
                }
                ConfigState { index, config }
            }
        ),
    ]
}

pub fn message_between(from: NodeId, to: NodeId) -> impl Strategy<Value = Message> {
    term().prop_flat_map(move |term| {
        body(term).prop_map(move |body| Message { from, to, term, body })
    })
}

pub fn message() -> impl Strategy<Value = Message> {
    (node_id(), node_id()).prop_flat_map(|(from, to)| message_between(from, to))
}

pub fn peer_batch() -> impl Strategy<Value = PeerBatch> {
    (1..=u64::MAX, node_id(), node_id()).prop_flat_map(|(cluster, from, to)| {
        vec(message_between(from, to), 0..6).prop_map(move |messages| PeerBatch {
            cluster_id: ClusterId(cluster),
            from,
            to,
            messages,
        })
    })
}

pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z]{1,8}", any::<String>()]
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        text().prop_map(|key| Op::Get { key }),
        (text(), text()).prop_map(|(key, value)| Op::Put { key, value }),
        (text(), text()).prop_map(|(key, value)| Op::Append { key, value }),
    ]
}

pub fn client_request() -> impl Strategy<Value = ClientRequest> {
    (1..=u64::MAX, prop_oneof![1..100u64, 1..=u64::MAX], op()).prop_map(|(client, seq, op)| {
        ClientRequest { client: ClientId(client), seq: Sequence(seq), op }
    })
}

/// Errors, with leader hints naming any non-zero node id.
pub fn kv_error() -> impl Strategy<Value = KvError> {
    prop_oneof![
        proptest::option::of(prop_oneof![1..8u64, 1..u64::MAX])
            .prop_map(|id| KvError::WrongLeader { leader: id.map(NodeId) }),
        Just(KvError::SessionExpired),
        Just(KvError::Stale),
    ]
}

/// A reply to a Put or an Append.
pub fn write_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![Just(Ok(Outcome::Done)), kv_error().prop_map(Err)]
}

/// A reply to a Get.
pub fn get_reply() -> impl Strategy<Value = Reply> {
    prop_oneof![text().prop_map(|v| Ok(Outcome::Value(v))), kv_error().prop_map(Err)]
}
