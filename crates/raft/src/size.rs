//! Encoded sizes of Raft data, as a lean fixed-width little-endian encoding would lay them out.
//!
//! The simulator counts RPC bytes with these, and storage reports the "Raft state size" (hard
//! state plus retained entries) that the snapshot policy and the lab's size limits read.
//! Layout: integers are u64 (8 bytes), flags 1 byte, byte strings a u32 length then the bytes.

use crate::message::{Entry, HardState, Message, MessageBody};

const U64: usize = 8;
const FLAG: usize = 1;
const LEN: usize = 4;

/// term, vote (0 = none), commit.
pub const HARD_STATE_LEN: usize = 3 * U64;

/// term, index, data.
pub fn entry_len(entry: &Entry) -> usize {
    2 * U64 + LEN + entry.data.len()
}

/// The encoded size of a hard state: fixed, whatever it holds.
pub fn hard_state_len(_: &HardState) -> usize {
    HARD_STATE_LEN
}

/// from, to, term, a kind byte, then the body.
pub fn message_len(message: &Message) -> usize {
    let header = 3 * U64 + FLAG;
    let body = match &message.body {
        MessageBody::Vote { .. } => 2 * FLAG + 2 * U64,
        MessageBody::VoteResponse { .. } => 2 * FLAG,
        MessageBody::Append { entries, .. } => {
            3 * U64 + LEN + entries.iter().map(entry_len).sum::<usize>()
        }
        MessageBody::AppendResponse(_) => FLAG + 3 * U64,
        MessageBody::Heartbeat { .. } => 2 * U64,
        MessageBody::HeartbeatResponse { .. } => U64,
        MessageBody::SnapshotChunk { data, config, .. } => {
            3 * U64 + LEN + data.len() + FLAG + U64 + LEN + config.config.encoded_len()
        }
        MessageBody::SnapshotResponse(_) => FLAG + 2 * U64,
        MessageBody::ReadIndexRequest { .. } => U64,
        MessageBody::ReadIndexResponse { .. } => U64 + FLAG + U64,
        MessageBody::TimeoutNow { .. } => U64,
        MessageBody::TimeoutNowRejected { .. } => FLAG,
        MessageBody::Removed { .. } => U64,
    };
    header + body
}
