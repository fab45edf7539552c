//! The peer wire protocol (described in `peer.proto`): after the 8-byte [`PEER_MAGIC`], a
//! stream of frames, each a little-endian u32 length and that many bytes. Sender to receiver,
//! a frame is one encoded `MessageBatch`; receiver to sender, the only frame is a refusal (UTF-8,
//! why), after which the receiver closes.
//!
//! Why not gRPC: a client-streaming call costs each message a hop through tonic's stream and
//! h2's connection task on both sides, about 40 µs a hop on a small machine, and a put crosses
//! two peer hops. Plain frames cost one socket write and one read.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kvraft_proto::v1 as pb;
use kvraft_proto::PeerBatch;
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncReadExt};

/// What a peer connection starts with: the protocol and its version. No HTTP request starts
/// with `K`, so the listener can tell peers from gRPC clients by the first byte.
pub const PEER_MAGIC: [u8; 8] = *b"KVRPEER1";

/// A batch closes at this many payload bytes (a snapshot chunk or large entries), well under
/// [`MAX_FRAME_BYTES`].
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// The largest frame a node sends or accepts; a longer length ends the connection.
pub const MAX_FRAME_BYTES: usize = 4 * MAX_BATCH_BYTES + (1 << 20);

const LEN_BYTES: usize = 4;

/// Why a peer connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("a frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES} bytes")]
    FrameTooLarge(usize),
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    #[error("not a kvraft peer connection (it starts with {0:?})")]
    BadMagic([u8; 8]),
}

/// Appends `batch` to `out` as one frame.
pub fn encode_batch(batch: PeerBatch, out: &mut BytesMut) {
    let batch = pb::MessageBatch::from(batch);
    let len = batch.encoded_len();
    out.reserve(LEN_BYTES + len);
    out.put_u32_le(len as u32);
    batch.encode(out).expect("the buffer was reserved");
}

/// Appends a refusal frame saying `why` to `out`.
pub fn encode_refusal(why: &str, out: &mut BytesMut) {
    let why = &why.as_bytes()[..why.len().min(MAX_FRAME_BYTES)];
    out.reserve(LEN_BYTES + why.len());
    out.put_u32_le(why.len() as u32);
    out.put_slice(why);
}

/// Decodes one frame's payload as a `MessageBatch`. Entry and snapshot data stay slices of
/// `frame`, not copies.
pub fn decode_batch(frame: Bytes) -> Result<pb::MessageBatch, prost::DecodeError> {
    pb::MessageBatch::decode(frame)
}

/// Reads the 8 bytes a peer connection must start with.
pub async fn read_magic<R: AsyncRead + Unpin>(reader: &mut R) -> Result<(), WireError> {
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => WireError::Truncated,
        _ => WireError::Io(e),
    })?;
    if magic != PEER_MAGIC {
        return Err(WireError::BadMagic(magic));
    }
    Ok(())
}

/// Cuts frames out of a byte stream. [`FrameReader::next_frame`] is cancel-safe: bytes read
/// before a cancellation stay in the buffer for the next call.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader::default()
    }

    /// The next frame's payload; `None` at a clean end of stream (between frames).
    pub async fn next_frame<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<Bytes>, WireError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            if self.buf.capacity() - self.buf.len() < 64 << 10 {
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
        if len > MAX_FRAME_BYTES {
            return Err(WireError::FrameTooLarge(len));
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
    use kvraft_proto::ClusterId;
    use kvraft_raft::{Message, MessageBody, NodeId, Term};

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
        let mut reader = FrameReader::new();
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
                let got = decode_batch(frame.unwrap().unwrap()).unwrap();
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
        bytes.put_u32_le(MAX_FRAME_BYTES as u32 + 1);
        let frames = frames_of(&bytes, 4).await;
        assert_eq!(frames, vec![Err(WireError::FrameTooLarge(MAX_FRAME_BYTES + 1).to_string())]);
    }

    #[tokio::test]
    async fn refusals_round_trip_and_the_magic_is_checked() {
        let mut bytes = BytesMut::new();
        encode_refusal("node 3 is not a peer of node 1", &mut bytes);
        let frames = frames_of(&bytes, 2).await;
        assert_eq!(
            frames[0].as_ref().unwrap().as_deref(),
            Some(&b"node 3 is not a peer of node 1"[..])
        );

        let mut good = &PEER_MAGIC[..];
        read_magic(&mut good).await.unwrap();
        let mut http2 = &b"PRI * HTTP/2.0\r\n"[..];
        assert!(
            matches!(read_magic(&mut http2).await, Err(WireError::BadMagic(m)) if &m == b"PRI * HT")
        );
        let mut short = &b"KVR"[..];
        assert!(matches!(read_magic(&mut short).await, Err(WireError::Truncated)));
    }
}
