//! Conversions between the generated wire types ([`crate::v1`]) and kvraft's domain types.
//!
//! Domain to wire is infallible (`From`), except a [`Reply`] whose outcome cannot answer the rpc
//! at hand (see [`OutcomeMismatch`]). Wire to domain is `TryFrom` with [`ConvertError`]: bytes
//! from the network are untrusted, so every required field, enum value and structural rule is
//! checked here, and malformed input yields an error, never a panic. The checks are about shape
//! (a body is present, node ids are non-zero, an Append's entries are consecutive...), not
//! about Raft's semantics, which stay the core's business.

use kvraft_kv::{ClientId, ClientRequest, KvError, Op, Outcome, Reply, Sequence};
pub use kvraft_raft::ClusterId;
use kvraft_raft::{
    AppendResult, ClusterConfig, ConfigState, Entry, EntryKind, LogIndex, Message, MessageBody,
    NodeId, Role, SnapshotMeta, SnapshotResult, Term, TransferRefusal,
};

use crate::v1 as pb;
use crate::v1::raft_message as pbm;

/// Why a wire message could not become a domain value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A field the domain requires (a oneof, or a sub-message) is absent.
    #[error("missing required field {0}")]
    MissingField(&'static str),
    /// An enum field holds a number this version does not know, or the `*_UNSPECIFIED` zero.
    #[error("{field}: invalid enum value {value}")]
    InvalidEnumValue {
        /// The field.
        field: &'static str,
        /// The number found.
        value: i32,
    },
    /// A node id field is 0, which means "none" on the wire.
    #[error("{0}: node id 0 is not a node")]
    ZeroNodeId(&'static str),
    /// A batch's `cluster_id` is 0 (unset).
    #[error("cluster_id 0 is not a cluster")]
    ZeroClusterId,
    /// A client request's `client_id` is 0 (unset): sessions of such clients would collide.
    #[error("client_id 0 is not a client session")]
    ZeroClientId,
    /// A client request's `sequence` is 0 (unset): sequences start at 1.
    #[error("sequence 0 is invalid: sequences start at 1")]
    ZeroSequence,
    /// A message in a batch names a sender other than the batch's.
    #[error("message from node {message} in a batch from node {batch}")]
    SenderMismatch {
        /// The batch's sender.
        batch: NodeId,
        /// The message's sender.
        message: NodeId,
    },
    /// A message in a batch names a recipient other than the batch's.
    #[error("message to node {message} in a batch to node {batch}")]
    RecipientMismatch {
        /// The batch's recipient.
        batch: NodeId,
        /// The message's recipient.
        message: NodeId,
    },
    /// An Append's entries are not consecutive from `prev_log_index + 1`.
    #[error("Append entry #{position} has index {found}, expected {expected}")]
    EntryIndexGap {
        /// The entry's position in the message.
        position: usize,
        /// The index it should have.
        expected: LogIndex,
        /// The index it has.
        found: LogIndex,
    },
    /// An Append's entry terms decrease, drop below `prev_log_term`, or exceed the message term.
    #[error("Append entry {index} has term {term}, outside [{min}, {max}]")]
    EntryTermOutOfOrder {
        /// The entry's index.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The lowest term it may have.
        min: Term,
        /// The highest term it may have.
        max: Term,
    },
    /// An Append's entries would run past the largest representable log index.
    #[error("Append entries run past the largest log index")]
    IndexOverflow,
    /// A configuration (a config entry's, or a snapshot's) does not decode.
    #[error("{field}: unreadable configuration: {reason}")]
    BadConfig {
        /// Where it was.
        field: &'static str,
        /// Why it does not decode.
        reason: String,
    },
}

/// A domain [`Reply`] whose [`Outcome`] cannot answer the rpc it is meant for: a value for a
/// Put or Append, or [`Outcome::Done`] for a Get. A correct state machine never produces one for
/// a correct client; it happens when a client reuses a sequence number for a different
/// operation (the session table then answers with the other operation's recorded outcome).
/// A server should fail such a call with gRPC `INVALID_ARGUMENT` rather than invent an answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "a {rpc} cannot be answered with outcome {outcome:?} (sequence reused for another operation?)"
)]
pub struct OutcomeMismatch {
    /// The rpc being answered: "Put", "Append" or "Get".
    pub rpc: &'static str,
    /// The outcome that does not fit it.
    pub outcome: Outcome,
}

/// The domain view of a [`pb::MessageBatch`]: messages from one node to another in one cluster.
///
/// Converting from the wire guarantees non-zero ids and that every message's `from`/`to`
/// equal the batch's. Whether the batch is meant for *this* node and cluster is the receiver's
/// check (compare `cluster_id` and `to` with its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerBatch {
    /// The cluster the batch belongs to.
    pub cluster_id: ClusterId,
    /// The sending node.
    pub from: NodeId,
    /// The receiving node.
    pub to: NodeId,
    /// The Raft messages, in the order sent.
    pub messages: Vec<Message>,
}

/// One client request in wire form: which rpc it goes to, with its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvRequest {
    /// A `Put` call.
    Put(pb::PutRequest),
    /// An `Append` call.
    Append(pb::AppendRequest),
    /// A `Get` call.
    Get(pb::GetRequest),
}

impl KvRequest {
    /// The rpc's name: "Put", "Append" or "Get".
    pub fn rpc(&self) -> &'static str {
        match self {
            KvRequest::Put(_) => "Put",
            KvRequest::Append(_) => "Append",
            KvRequest::Get(_) => "Get",
        }
    }
}

fn node_id(field: &'static str, id: u64) -> Result<NodeId, ConvertError> {
    if id == 0 {
        return Err(ConvertError::ZeroNodeId(field));
    }
    Ok(NodeId(id))
}

fn enum_value<E: TryFrom<i32>>(field: &'static str, value: i32) -> Result<E, ConvertError> {
    E::try_from(value).map_err(|_| ConvertError::InvalidEnumValue { field, value })
}

// ---------------------------------------------------------------------------------------------
// Raft messages
// ---------------------------------------------------------------------------------------------

impl From<Entry> for pb::Entry {
    fn from(e: Entry) -> pb::Entry {
        let kind = match e.kind {
            EntryKind::Normal => pb::EntryKind::Normal,
            EntryKind::Config => pb::EntryKind::Config,
        };
        pb::Entry { term: e.term.0, index: e.index.0, data: e.data, kind: kind as i32 }
    }
}

/// A config entry must carry a configuration that decodes (the core relies on it); an Append
/// checks the order of its entries together.
impl TryFrom<pb::Entry> for Entry {
    type Error = ConvertError;

    fn try_from(e: pb::Entry) -> Result<Entry, ConvertError> {
        let kind = match enum_value::<pb::EntryKind>("Entry.kind", e.kind)? {
            pb::EntryKind::Normal => EntryKind::Normal,
            pb::EntryKind::Config => {
                decode_config("Entry.data", &e.data)?;
                EntryKind::Config
            }
        };
        Ok(Entry { term: Term(e.term), index: LogIndex(e.index), kind, data: e.data })
    }
}

fn decode_config(field: &'static str, bytes: &[u8]) -> Result<ClusterConfig, ConvertError> {
    ClusterConfig::decode(bytes)
        .map_err(|e| ConvertError::BadConfig { field, reason: e.to_string() })
}

/// A snapshot's configuration on the wire: empty bytes for "none known".
fn config_to_proto(config: &ConfigState) -> (u64, bytes::Bytes) {
    if config.is_unknown() {
        (0, bytes::Bytes::new())
    } else {
        (config.index.0, config.config.encode())
    }
}

fn config_from_proto(index: u64, bytes: &[u8]) -> Result<ConfigState, ConvertError> {
    if bytes.is_empty() {
        return Ok(ConfigState::default());
    }
    let config = decode_config("SnapshotChunk.config", bytes)?;
    Ok(ConfigState { index: LogIndex(index), config })
}

fn refusal_to_proto(reason: TransferRefusal) -> pb::TransferRefusal {
    match reason {
        TransferRefusal::NotAVoter => pb::TransferRefusal::NotAVoter,
        TransferRefusal::LogBehind => pb::TransferRefusal::LogBehind,
        TransferRefusal::SnapshotInFlight => pb::TransferRefusal::SnapshotInFlight,
        TransferRefusal::Removed => pb::TransferRefusal::Removed,
    }
}

fn refusal_from_proto(value: i32) -> Result<TransferRefusal, ConvertError> {
    let field = "TimeoutNowRejected.reason";
    Ok(match enum_value::<pb::TransferRefusal>(field, value)? {
        pb::TransferRefusal::NotAVoter => TransferRefusal::NotAVoter,
        pb::TransferRefusal::LogBehind => TransferRefusal::LogBehind,
        pb::TransferRefusal::SnapshotInFlight => TransferRefusal::SnapshotInFlight,
        pb::TransferRefusal::Removed => TransferRefusal::Removed,
        pb::TransferRefusal::Unspecified => {
            return Err(ConvertError::InvalidEnumValue { field, value })
        }
    })
}

impl From<SnapshotMeta> for pb::SnapshotMeta {
    fn from(m: SnapshotMeta) -> pb::SnapshotMeta {
        pb::SnapshotMeta { index: m.index.0, term: m.term.0 }
    }
}

impl From<pb::SnapshotMeta> for SnapshotMeta {
    fn from(m: pb::SnapshotMeta) -> SnapshotMeta {
        SnapshotMeta { index: LogIndex(m.index), term: Term(m.term) }
    }
}

impl From<AppendResult> for pbm::AppendResponse {
    fn from(r: AppendResult) -> pbm::AppendResponse {
        use pbm::append_response::{Accepted, Rejected, Result as R};
        let result = match r {
            AppendResult::Accepted { match_index } => {
                R::Accepted(Accepted { match_index: match_index.0 })
            }
            AppendResult::Rejected { rejected_prev, hint_index, hint_term } => {
                R::Rejected(Rejected {
                    rejected_prev: rejected_prev.0,
                    hint_index: hint_index.0,
                    hint_term: hint_term.0,
                })
            }
        };
        pbm::AppendResponse { result: Some(result) }
    }
}

impl TryFrom<pbm::AppendResponse> for AppendResult {
    type Error = ConvertError;

    fn try_from(r: pbm::AppendResponse) -> Result<AppendResult, ConvertError> {
        use pbm::append_response::Result as R;
        Ok(match r.result.ok_or(ConvertError::MissingField("AppendResponse.result"))? {
            R::Accepted(a) => AppendResult::Accepted { match_index: LogIndex(a.match_index) },
            R::Rejected(r) => AppendResult::Rejected {
                rejected_prev: LogIndex(r.rejected_prev),
                hint_index: LogIndex(r.hint_index),
                hint_term: Term(r.hint_term),
            },
        })
    }
}

impl From<SnapshotResult> for pbm::SnapshotResponse {
    fn from(r: SnapshotResult) -> pbm::SnapshotResponse {
        use pbm::snapshot_response::{Installed, NeedOffset, Result as R};
        let result = match r {
            SnapshotResult::Installed { match_index } => {
                R::Installed(Installed { match_index: match_index.0 })
            }
            SnapshotResult::NeedOffset { snapshot_index, offset } => {
                R::NeedOffset(NeedOffset { snapshot_index: snapshot_index.0, offset })
            }
        };
        pbm::SnapshotResponse { result: Some(result) }
    }
}

impl TryFrom<pbm::SnapshotResponse> for SnapshotResult {
    type Error = ConvertError;

    fn try_from(r: pbm::SnapshotResponse) -> Result<SnapshotResult, ConvertError> {
        use pbm::snapshot_response::Result as R;
        Ok(match r.result.ok_or(ConvertError::MissingField("SnapshotResponse.result"))? {
            R::Installed(i) => SnapshotResult::Installed { match_index: LogIndex(i.match_index) },
            R::NeedOffset(n) => SnapshotResult::NeedOffset {
                snapshot_index: LogIndex(n.snapshot_index),
                offset: n.offset,
            },
        })
    }
}

impl From<MessageBody> for pbm::Body {
    fn from(body: MessageBody) -> pbm::Body {
        match body {
            MessageBody::Vote { pre_vote, last_log_index, last_log_term, leadership_transfer } => {
                pbm::Body::Vote(pbm::Vote {
                    pre_vote,
                    last_log_index: last_log_index.0,
                    last_log_term: last_log_term.0,
                    leadership_transfer,
                })
            }
            MessageBody::VoteResponse { pre_vote, granted } => {
                pbm::Body::VoteResponse(pbm::VoteResponse { pre_vote, granted })
            }
            MessageBody::Append { prev_log_index, prev_log_term, entries, leader_commit } => {
                pbm::Body::Append(pbm::Append {
                    prev_log_index: prev_log_index.0,
                    prev_log_term: prev_log_term.0,
                    entries: entries.into_iter().map(pb::Entry::from).collect(),
                    leader_commit: leader_commit.0,
                })
            }
            MessageBody::AppendResponse(r) => pbm::Body::AppendResponse(r.into()),
            MessageBody::Heartbeat { commit, read_round } => {
                pbm::Body::Heartbeat(pbm::Heartbeat { commit: commit.0, read_round })
            }
            MessageBody::HeartbeatResponse { read_round } => {
                pbm::Body::HeartbeatResponse(pbm::HeartbeatResponse { read_round })
            }
            MessageBody::SnapshotChunk { meta, config, offset, data, done } => {
                let (config_index, config) = config_to_proto(&config);
                pbm::Body::SnapshotChunk(pbm::SnapshotChunk {
                    meta: Some(meta.into()),
                    offset,
                    data,
                    done,
                    config_index,
                    config,
                })
            }
            MessageBody::SnapshotResponse(r) => pbm::Body::SnapshotResponse(r.into()),
            MessageBody::ReadIndexRequest { ctx } => {
                pbm::Body::ReadIndexRequest(pbm::ReadIndexRequest { ctx })
            }
            MessageBody::ReadIndexResponse { ctx, index } => {
                pbm::Body::ReadIndexResponse(pbm::ReadIndexResponse {
                    ctx,
                    index: index.map(|i| i.0),
                })
            }
            MessageBody::TimeoutNow { last_index } => {
                pbm::Body::TimeoutNow(pbm::TimeoutNow { last_index: last_index.0 })
            }
            MessageBody::TimeoutNowRejected { reason } => {
                pbm::Body::TimeoutNowRejected(pbm::TimeoutNowRejected {
                    reason: refusal_to_proto(reason) as i32,
                })
            }
            MessageBody::Removed { config_index } => {
                pbm::Body::Removed(pbm::Removed { config_index: config_index.0 })
            }
        }
    }
}

impl From<Message> for pb::RaftMessage {
    fn from(m: Message) -> pb::RaftMessage {
        pb::RaftMessage { from: m.from.0, to: m.to.0, term: m.term.0, body: Some(m.body.into()) }
    }
}

/// Checks an Append's entries: consecutive from `prev_log_index + 1`, terms non-decreasing,
/// at least `prev_log_term` and at most the message's `term`. The core relies on this shape.
fn check_entries(
    prev_log_index: LogIndex,
    prev_log_term: Term,
    term: Term,
    entries: &[pb::Entry],
) -> Result<(), ConvertError> {
    let count = u64::try_from(entries.len()).map_err(|_| ConvertError::IndexOverflow)?;
    prev_log_index.0.checked_add(count).ok_or(ConvertError::IndexOverflow)?;
    let mut min_term = prev_log_term;
    for (position, (e, i)) in entries.iter().zip(1u64..).enumerate() {
        let expected = LogIndex(prev_log_index.0 + i);
        if e.index != expected.0 {
            return Err(ConvertError::EntryIndexGap {
                position,
                expected,
                found: LogIndex(e.index),
            });
        }
        if e.term < min_term.0 || e.term > term.0 {
            return Err(ConvertError::EntryTermOutOfOrder {
                index: expected,
                term: Term(e.term),
                min: min_term,
                max: term,
            });
        }
        min_term = Term(e.term);
    }
    Ok(())
}

fn body_from_proto(term: Term, body: pbm::Body) -> Result<MessageBody, ConvertError> {
    Ok(match body {
        pbm::Body::Vote(v) => MessageBody::Vote {
            pre_vote: v.pre_vote,
            last_log_index: LogIndex(v.last_log_index),
            last_log_term: Term(v.last_log_term),
            leadership_transfer: v.leadership_transfer,
        },
        pbm::Body::VoteResponse(v) => {
            MessageBody::VoteResponse { pre_vote: v.pre_vote, granted: v.granted }
        }
        pbm::Body::Append(a) => {
            let prev_log_index = LogIndex(a.prev_log_index);
            let prev_log_term = Term(a.prev_log_term);
            check_entries(prev_log_index, prev_log_term, term, &a.entries)?;
            MessageBody::Append {
                prev_log_index,
                prev_log_term,
                entries: a.entries.into_iter().map(Entry::try_from).collect::<Result<_, _>>()?,
                leader_commit: LogIndex(a.leader_commit),
            }
        }
        pbm::Body::AppendResponse(r) => MessageBody::AppendResponse(r.try_into()?),
        pbm::Body::Heartbeat(h) => {
            MessageBody::Heartbeat { commit: LogIndex(h.commit), read_round: h.read_round }
        }
        pbm::Body::HeartbeatResponse(h) => {
            MessageBody::HeartbeatResponse { read_round: h.read_round }
        }
        pbm::Body::SnapshotChunk(c) => MessageBody::SnapshotChunk {
            meta: c.meta.ok_or(ConvertError::MissingField("SnapshotChunk.meta"))?.into(),
            config: config_from_proto(c.config_index, &c.config)?,
            offset: c.offset,
            data: c.data,
            done: c.done,
        },
        pbm::Body::SnapshotResponse(r) => MessageBody::SnapshotResponse(r.try_into()?),
        pbm::Body::ReadIndexRequest(r) => MessageBody::ReadIndexRequest { ctx: r.ctx },
        pbm::Body::ReadIndexResponse(r) => {
            MessageBody::ReadIndexResponse { ctx: r.ctx, index: r.index.map(LogIndex) }
        }
        pbm::Body::TimeoutNow(t) => MessageBody::TimeoutNow { last_index: LogIndex(t.last_index) },
        pbm::Body::TimeoutNowRejected(r) => {
            MessageBody::TimeoutNowRejected { reason: refusal_from_proto(r.reason)? }
        }
        pbm::Body::Removed(r) => MessageBody::Removed { config_index: LogIndex(r.config_index) },
    })
}

impl TryFrom<pb::RaftMessage> for Message {
    type Error = ConvertError;

    fn try_from(m: pb::RaftMessage) -> Result<Message, ConvertError> {
        let from = node_id("RaftMessage.from", m.from)?;
        let to = node_id("RaftMessage.to", m.to)?;
        let term = Term(m.term);
        let body = m.body.ok_or(ConvertError::MissingField("RaftMessage.body"))?;
        Ok(Message { from, to, term, body: body_from_proto(term, body)? })
    }
}

impl From<PeerBatch> for pb::MessageBatch {
    fn from(b: PeerBatch) -> pb::MessageBatch {
        pb::MessageBatch {
            cluster_id: b.cluster_id.0,
            from: b.from.0,
            to: b.to.0,
            messages: b.messages.into_iter().map(pb::RaftMessage::from).collect(),
        }
    }
}

impl TryFrom<pb::MessageBatch> for PeerBatch {
    type Error = ConvertError;

    fn try_from(b: pb::MessageBatch) -> Result<PeerBatch, ConvertError> {
        if b.cluster_id == 0 {
            return Err(ConvertError::ZeroClusterId);
        }
        let from = node_id("MessageBatch.from", b.from)?;
        let to = node_id("MessageBatch.to", b.to)?;
        let messages = b
            .messages
            .into_iter()
            .map(|m| {
                let m = Message::try_from(m)?;
                if m.from != from {
                    return Err(ConvertError::SenderMismatch { batch: from, message: m.from });
                }
                if m.to != to {
                    return Err(ConvertError::RecipientMismatch { batch: to, message: m.to });
                }
                Ok(m)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PeerBatch { cluster_id: ClusterId(b.cluster_id), from, to, messages })
    }
}

// ---------------------------------------------------------------------------------------------
// Client requests
// ---------------------------------------------------------------------------------------------

fn session(client_id: u64, sequence: u64) -> Result<(ClientId, Sequence), ConvertError> {
    if client_id == 0 {
        return Err(ConvertError::ZeroClientId);
    }
    if sequence == 0 {
        return Err(ConvertError::ZeroSequence);
    }
    Ok((ClientId(client_id), Sequence(sequence)))
}

impl TryFrom<pb::PutRequest> for ClientRequest {
    type Error = ConvertError;

    fn try_from(r: pb::PutRequest) -> Result<ClientRequest, ConvertError> {
        let (client, seq) = session(r.client_id, r.sequence)?;
        Ok(ClientRequest { client, seq, op: Op::Put { key: r.key, value: r.value } })
    }
}

impl TryFrom<pb::AppendRequest> for ClientRequest {
    type Error = ConvertError;

    fn try_from(r: pb::AppendRequest) -> Result<ClientRequest, ConvertError> {
        let (client, seq) = session(r.client_id, r.sequence)?;
        Ok(ClientRequest { client, seq, op: Op::Append { key: r.key, value: r.value } })
    }
}

impl TryFrom<pb::GetRequest> for ClientRequest {
    type Error = ConvertError;

    fn try_from(r: pb::GetRequest) -> Result<ClientRequest, ConvertError> {
        let (client, seq) = session(r.client_id, r.sequence)?;
        Ok(ClientRequest { client, seq, op: Op::Get { key: r.key } })
    }
}

impl From<ClientRequest> for KvRequest {
    fn from(r: ClientRequest) -> KvRequest {
        let (client_id, sequence) = (r.client.0, r.seq.0);
        match r.op {
            Op::Put { key, value } => {
                KvRequest::Put(pb::PutRequest { client_id, sequence, key, value })
            }
            Op::Append { key, value } => {
                KvRequest::Append(pb::AppendRequest { client_id, sequence, key, value })
            }
            Op::Get { key } => KvRequest::Get(pb::GetRequest { client_id, sequence, key }),
        }
    }
}

impl TryFrom<KvRequest> for ClientRequest {
    type Error = ConvertError;

    fn try_from(r: KvRequest) -> Result<ClientRequest, ConvertError> {
        match r {
            KvRequest::Put(r) => r.try_into(),
            KvRequest::Append(r) => r.try_into(),
            KvRequest::Get(r) => r.try_into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------------------------

/// The hint names the leader's node id; its address is left empty (the domain error does not
/// know it): a server that knows the address fills it in with
/// [`pb::Error::with_leader_address`]. `message` gets the error's `Display` text.
impl From<KvError> for pb::Error {
    fn from(e: KvError) -> pb::Error {
        let message = e.to_string();
        let (code, leader_hint) = match e {
            KvError::WrongLeader { leader } => (
                pb::ErrorCode::NotLeader,
                leader.map(|id| pb::LeaderHint { node_id: id.0, address: String::new() }),
            ),
            KvError::SessionExpired => (pb::ErrorCode::SessionExpired, None),
            KvError::Stale => (pb::ErrorCode::Stale, None),
        };
        pb::Error { code: code.into(), leader_hint, message }
    }
}

impl pb::Error {
    /// Fills in the leader hint's address (if there is a hint) from `address_of`, typically
    /// the server's peer table.
    pub fn with_leader_address(
        mut self,
        address_of: impl FnOnce(NodeId) -> Option<String>,
    ) -> Self {
        if let Some(hint) = &mut self.leader_hint {
            if let Some(address) = address_of(NodeId(hint.node_id)) {
                hint.address = address;
            }
        }
        self
    }
}

/// The hint's address is dropped (the domain names the leader by node id only; read the
/// address from the wire message first if needed). A hint on an error other than NOT_LEADER is
/// ignored.
impl TryFrom<pb::Error> for KvError {
    type Error = ConvertError;

    fn try_from(e: pb::Error) -> Result<KvError, ConvertError> {
        Ok(match enum_value("Error.code", e.code)? {
            pb::ErrorCode::Unspecified => {
                return Err(ConvertError::InvalidEnumValue { field: "Error.code", value: e.code })
            }
            pb::ErrorCode::NotLeader => {
                let leader = match e.leader_hint {
                    None => None,
                    Some(hint) => Some(node_id("LeaderHint.node_id", hint.node_id)?),
                };
                KvError::WrongLeader { leader }
            }
            pb::ErrorCode::SessionExpired => KvError::SessionExpired,
            pb::ErrorCode::Stale => KvError::Stale,
        })
    }
}

impl From<Result<(), KvError>> for pb::PutReply {
    fn from(r: Result<(), KvError>) -> pb::PutReply {
        use pb::put_reply::Result as R;
        let result = match r {
            Ok(()) => R::Done(pb::Done {}),
            Err(e) => R::Error(e.into()),
        };
        pb::PutReply { result: Some(result) }
    }
}

impl From<Result<(), KvError>> for pb::AppendReply {
    fn from(r: Result<(), KvError>) -> pb::AppendReply {
        use pb::append_reply::Result as R;
        let result = match r {
            Ok(()) => R::Done(pb::Done {}),
            Err(e) => R::Error(e.into()),
        };
        pb::AppendReply { result: Some(result) }
    }
}

impl From<Result<String, KvError>> for pb::GetReply {
    fn from(r: Result<String, KvError>) -> pb::GetReply {
        use pb::get_reply::Result as R;
        let result = match r {
            Ok(value) => R::Value(value),
            Err(e) => R::Error(e.into()),
        };
        pb::GetReply { result: Some(result) }
    }
}

fn expect_done(rpc: &'static str, reply: Reply) -> Result<Result<(), KvError>, OutcomeMismatch> {
    match reply {
        Ok(Outcome::Done) => Ok(Ok(())),
        Ok(outcome @ Outcome::Value(_)) => Err(OutcomeMismatch { rpc, outcome }),
        Err(e) => Ok(Err(e)),
    }
}

impl TryFrom<Reply> for pb::PutReply {
    type Error = OutcomeMismatch;

    fn try_from(reply: Reply) -> Result<pb::PutReply, OutcomeMismatch> {
        expect_done("Put", reply).map(pb::PutReply::from)
    }
}

impl TryFrom<Reply> for pb::AppendReply {
    type Error = OutcomeMismatch;

    fn try_from(reply: Reply) -> Result<pb::AppendReply, OutcomeMismatch> {
        expect_done("Append", reply).map(pb::AppendReply::from)
    }
}

impl TryFrom<Reply> for pb::GetReply {
    type Error = OutcomeMismatch;

    fn try_from(reply: Reply) -> Result<pb::GetReply, OutcomeMismatch> {
        match reply {
            Ok(Outcome::Value(v)) => Ok(Ok(v).into()),
            Ok(outcome @ Outcome::Done) => Err(OutcomeMismatch { rpc: "Get", outcome }),
            Err(e) => Ok(Err(e).into()),
        }
    }
}

impl TryFrom<pb::PutReply> for Reply {
    type Error = ConvertError;

    fn try_from(r: pb::PutReply) -> Result<Reply, ConvertError> {
        use pb::put_reply::Result as R;
        match r.result.ok_or(ConvertError::MissingField("PutReply.result"))? {
            R::Done(pb::Done {}) => Ok(Ok(Outcome::Done)),
            R::Error(e) => Ok(Err(e.try_into()?)),
        }
    }
}

impl TryFrom<pb::AppendReply> for Reply {
    type Error = ConvertError;

    fn try_from(r: pb::AppendReply) -> Result<Reply, ConvertError> {
        use pb::append_reply::Result as R;
        match r.result.ok_or(ConvertError::MissingField("AppendReply.result"))? {
            R::Done(pb::Done {}) => Ok(Ok(Outcome::Done)),
            R::Error(e) => Ok(Err(e.try_into()?)),
        }
    }
}

impl TryFrom<pb::GetReply> for Reply {
    type Error = ConvertError;

    fn try_from(r: pb::GetReply) -> Result<Reply, ConvertError> {
        use pb::get_reply::Result as R;
        match r.result.ok_or(ConvertError::MissingField("GetReply.result"))? {
            R::Value(v) => Ok(Ok(Outcome::Value(v))),
            R::Error(e) => Ok(Err(e.try_into()?)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

impl From<Role> for pb::Role {
    fn from(r: Role) -> pb::Role {
        match r {
            Role::Follower => pb::Role::Follower,
            Role::PreCandidate => pb::Role::PreCandidate,
            Role::Candidate => pb::Role::Candidate,
            Role::Leader => pb::Role::Leader,
        }
    }
}

impl TryFrom<pb::Role> for Role {
    type Error = ConvertError;

    fn try_from(r: pb::Role) -> Result<Role, ConvertError> {
        Ok(match r {
            pb::Role::Unspecified => {
                return Err(ConvertError::InvalidEnumValue { field: "Role", value: r.into() })
            }
            pb::Role::Follower => Role::Follower,
            pb::Role::PreCandidate => Role::PreCandidate,
            pb::Role::Candidate => Role::Candidate,
            pb::Role::Leader => Role::Leader,
        })
    }
}

impl pb::StatusReply {
    /// The node's role as the domain type; an error for an unknown or unspecified value.
    pub fn domain_role(&self) -> Result<Role, ConvertError> {
        enum_value::<pb::Role>("StatusReply.role", self.role)?.try_into().map_err(|_| {
            ConvertError::InvalidEnumValue { field: "StatusReply.role", value: self.role }
        })
    }

    /// The leader's node id, if this node knows it (`leader_id` 0 means unknown).
    pub fn leader(&self) -> Option<NodeId> {
        (self.leader_id != 0).then_some(NodeId(self.leader_id))
    }
}
