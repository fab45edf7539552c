//! Length-prefixed frames on a byte stream, as kvraft's two non-gRPC protocols use them: the
//! peer protocol (`peer.proto`) and the client frames (`frames.proto`). A connection starts with
//! an 8-byte magic naming the protocol and its version, then carries frames: a little-endian
//! u32 length and that many bytes (one encoded protobuf message).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// What a peer connection starts with. No HTTP request starts with `K`, so a listener can
/// tell these protocols from gRPC by the first byte.
pub const PEER_MAGIC: [u8; 8] = *b"KVRPEER1";
/// What a client-frames connection starts with.
pub const CLIENT_MAGIC: [u8; 8] = *b"KVRCLNT1";

const LEN_BYTES: usize = 4;

/// Why a framed connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Reading or writing the connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A frame is longer than the limit: the peer is broken or hostile, and the connection is
    /// dropped rather than buffering it.
    #[error("a frame of {len} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The length the frame's prefix states.
        len: usize,
        /// The largest frame accepted.
        limit: usize,
    },
    /// The connection ended in the middle of a frame.
    #[error("the connection closed in the middle of a frame")]
    Truncated,
}

/// Appends `message` to `out` as one frame.
pub fn encode_frame(message: &impl prost::Message, out: &mut BytesMut) {
    let len = message.encoded_len();
    out.reserve(LEN_BYTES + len);
    out.put_u32_le(len as u32);
    message.encode(out).expect("the buffer was reserved");
}

/// Appends `payload` to `out` as one frame.
pub fn encode_raw_frame(payload: &[u8], out: &mut BytesMut) {
    out.reserve(LEN_BYTES + payload.len());
    out.put_u32_le(payload.len() as u32);
    out.put_slice(payload);
}

/// Reads the 8 bytes a framed connection starts with.
pub async fn read_magic<R: AsyncRead + Unpin>(reader: &mut R) -> Result<[u8; 8], WireError> {
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => WireError::Truncated,
        _ => WireError::Io(e),
    })?;
    Ok(magic)
}

/// Cuts frames out of a byte stream. [`FrameReader::next_frame`] is cancel-safe: bytes read
/// before a cancellation stay in the buffer for the next call.
#[derive(Debug)]
pub struct FrameReader {
    buf: BytesMut,
    limit: usize,
}

impl FrameReader {
    /// A reader that refuses frames longer than `limit` bytes.
    pub fn new(limit: usize) -> FrameReader {
        FrameReader { buf: BytesMut::new(), limit }
    }

    /// The next frame's payload; `None` at a clean end of stream (between frames). The
    /// payload is a slice of the read buffer, not a copy.
    pub async fn next_frame<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<Bytes>, WireError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() < 4 << 10 {
                self.buf.reserve(64 << 10);
            }
            if reader.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() { Ok(None) } else { Err(WireError::Truncated) };
            }
        }
    }

    /// A whole frame from the buffer, if one is there.
    fn take_frame(&mut self) -> Result<Option<Bytes>, WireError> {
        if self.buf.len() < LEN_BYTES {
            return Ok(None);
        }
        let len = u32::from_le_bytes(self.buf[..LEN_BYTES].try_into().expect("4 bytes")) as usize;
        if len > self.limit {
            return Err(WireError::FrameTooLarge { len, limit: self.limit });
        }
        if self.buf.len() < LEN_BYTES + len {
            // Make room for the whole frame at once rather than growing step by step.
            self.buf.reserve(LEN_BYTES + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(LEN_BYTES);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1 as pb;
    use crate::{ClusterId, PeerBatch};
    use kvraft_raft::{Message, MessageBody, NodeId, Term};

    const LIMIT: usize = 1 << 20;

    fn encode_batch(batch: PeerBatch, out: &mut BytesMut) {
        encode_frame(&pb::MessageBatch::from(batch), out);
    }

    fn decode_batch(frame: Bytes) -> pb::MessageBatch {
        prost::Message::decode(frame).unwrap()
    }

    fn batch(messages: usize) -> PeerBatch {
        let heartbeat = |i: u64| Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(i),
            body: MessageBody::VoteResponse { pre_vote: false, granted: i.is_multiple_of(2) },
        };
        PeerBatch {
            cluster_id: ClusterId(7),
            from: NodeId(1),
            to: NodeId(2),
            messages: (0..messages as u64).map(heartbeat).collect(),
        }
    }

    /// Feeds `bytes` to a reader in pieces of `step` bytes, as a slow socket would.
    async fn frames_of(bytes: &[u8], step: usize) -> Vec<Result<Option<Bytes>, String>> {
        let (mut tx, mut rx) = tokio::io::duplex(step);
        let owned = bytes.to_vec();
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for piece in owned.chunks(step) {
                tx.write_all(piece).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(LIMIT);
        let mut out = Vec::new();
        loop {
            let next = reader.next_frame(&mut rx).await.map_err(|e| e.to_string());
            let done = !matches!(next, Ok(Some(_)));
            out.push(next);
            if done {
                break;
            }
        }
        writer.await.unwrap();
        out
    }

    #[tokio::test]
    async fn batches_round_trip_through_frames_cut_anywhere() {
        let mut bytes = BytesMut::new();
        encode_batch(batch(3), &mut bytes);
        encode_batch(batch(0), &mut bytes);
        encode_batch(batch(50), &mut bytes);
        for step in [1, 3, 7, 64, 4096] {
            let frames = frames_of(&bytes, step).await;
            assert_eq!(frames.len(), 4, "three frames and the clean end, step {step}");
            assert_eq!(frames[3], Ok(None));
            for (frame, want) in frames.into_iter().zip([batch(3), batch(0), batch(50)]) {
                let got = decode_batch(frame.unwrap().unwrap());
                assert_eq!(PeerBatch::try_from(got).unwrap(), want, "step {step}");
            }
        }
    }

    #[tokio::test]
    async fn a_stream_cut_inside_a_frame_is_an_error_not_an_end() {
        let mut bytes = BytesMut::new();
        encode_batch(batch(2), &mut bytes);
        let whole = bytes.len();
        encode_batch(batch(2), &mut bytes);
        for cut in [whole + 1, whole + 4, bytes.len() - 1] {
            let frames = frames_of(&bytes[..cut], 5).await;
            assert_eq!(frames.len(), 2, "cut at {cut}");
            assert!(frames[0].as_ref().unwrap().is_some());
            assert_eq!(frames[1], Err(WireError::Truncated.to_string()), "cut at {cut}");
        }
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_reading_the_payload() {
        let mut bytes = BytesMut::new();
        bytes.put_u32_le(LIMIT as u32 + 1);
        let frames = frames_of(&bytes, 4).await;
        let too_large = WireError::FrameTooLarge { len: LIMIT + 1, limit: LIMIT };
        assert_eq!(frames, vec![Err(too_large.to_string())]);
    }

    #[tokio::test]
    async fn raw_frames_round_trip_and_the_magic_is_read_whole() {
        let mut bytes = BytesMut::new();
        encode_raw_frame(b"node 3 is not a peer of node 1", &mut bytes);
        let frames = frames_of(&bytes, 2).await;
        let first = frames[0].as_ref().unwrap().as_deref();
        assert_eq!(first, Some(&b"node 3 is not a peer of node 1"[..]));

        let mut good = &PEER_MAGIC[..];
        assert_eq!(read_magic(&mut good).await.unwrap(), PEER_MAGIC);
        let mut short = &b"KVR"[..];
        assert!(matches!(read_magic(&mut short).await, Err(WireError::Truncated)));
    }
}
