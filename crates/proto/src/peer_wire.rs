//! The peer protocol's frames (described in `peer.proto`; the framing itself is
//! [`crate::frame`]): sender to receiver, a frame is one encoded `MessageBatch`;
//! receiver to sender, the only frame is a refusal (UTF-8, why), after which the receiver
//! closes.
//!
//! Why not gRPC: a client-streaming call costs each message a hop through tonic's stream and
//! h2's connection task on both sides, and a put crosses two peer hops. Plain frames cost one
//! socket write and one read.

use bytes::{Bytes, BytesMut};
use prost::Message as _;

use crate::frame::{encode_frame, encode_raw_frame};
use crate::v1 as pb;
use crate::PeerBatch;

pub use crate::frame::{FrameReader, WireError, PEER_MAGIC};

/// A batch closes at this many payload bytes (a snapshot chunk or large entries), well under
/// [`MAX_PEER_FRAME_BYTES`].
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// The largest peer frame a node sends or accepts; a longer length ends the connection.
pub const MAX_PEER_FRAME_BYTES: usize = 4 * MAX_BATCH_BYTES + (1 << 20);

/// Appends `batch` to `out` as one frame.
pub fn encode_batch(batch: PeerBatch, out: &mut BytesMut) {
    encode_frame(&pb::MessageBatch::from(batch), out);
}

/// Appends a refusal frame saying `why` to `out`.
pub fn encode_refusal(why: &str, out: &mut BytesMut) {
    encode_raw_frame(why.as_bytes(), out);
}

/// Decodes one frame's payload as a `MessageBatch`. Entry and snapshot data stay slices of
/// `frame`, not copies.
pub fn decode_batch(frame: Bytes) -> Result<pb::MessageBatch, prost::DecodeError> {
    pb::MessageBatch::decode(frame)
}
