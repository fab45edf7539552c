//! Binary encodings of log commands and snapshots: fixed-width little-endian integers,
//! length-prefixed UTF-8 strings, a version byte in front. Decoding never panics: bad bytes give
//! a `DecodeError`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::{ClientId, ClientRequest, Command, Op, Sequence};

/// The version byte in front of every encoded command; a decoder refuses any other.
pub const COMMAND_VERSION: u8 = 1;

/// Why bytes could not be decoded. Offsets count from the start of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ends in the middle of a value.
    #[error("truncated: needed {needed} more bytes at offset {offset}")]
    Truncated {
        /// Where the missing bytes start.
        offset: usize,
        /// How many more bytes were needed.
        needed: usize,
    },
    /// A tag or version this decoder does not know.
    #[error("unknown {what} {value} at offset {offset}")]
    Unknown {
        /// What was being decoded (a version, an op, a kind).
        what: &'static str,
        /// The value found.
        value: u64,
        /// Where it was found.
        offset: usize,
    },
    /// A string's bytes are not UTF-8.
    #[error("string at offset {offset} is not UTF-8")]
    NotUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// Bytes are left after the value; holds how many.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// A cursor over bytes being decoded.
#[derive(Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, offset: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let rest = &self.data[self.offset..];
        if rest.len() < n {
            return Err(DecodeError::Truncated { offset: self.offset, needed: n - rest.len() });
        }
        self.offset += n;
        Ok(&rest[..n])
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    /// Reads a string: a `u32` length, then that many UTF-8 bytes.
    pub fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let offset = self.offset;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { offset })
    }

    /// How many bytes have been read.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The error for an unknown `what` with `value`, at the current offset.
    pub fn unknown(&self, what: &'static str, value: u64) -> DecodeError {
        DecodeError::Unknown { what, value, offset: self.offset }
    }

    /// Ends decoding: an error if any byte is left over, so that a truncated or padded encoding is
    /// never taken for a valid one.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.data.len() - self.offset {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Writes a string as `Reader::string` reads it.
pub fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_u32_le(s.len() as u32);
    buf.put_slice(s.as_bytes());
}

const OP_GET: u8 = 0;
const OP_PUT: u8 = 1;
const OP_APPEND: u8 = 2;
const KIND_CLIENT: u8 = 1;

/// Writes an operation: its kind byte, then its key and value.
pub fn put_op(buf: &mut BytesMut, op: &Op) {
    match op {
        Op::Get { key } => {
            buf.put_u8(OP_GET);
            put_string(buf, key);
        }
        Op::Put { key, value } => {
            buf.put_u8(OP_PUT);
            put_string(buf, key);
            put_string(buf, value);
        }
        Op::Append { key, value } => {
            buf.put_u8(OP_APPEND);
            put_string(buf, key);
            put_string(buf, value);
        }
    }
}

/// Reads an operation written by `put_op`.
pub fn read_op(r: &mut Reader<'_>) -> Result<Op, DecodeError> {
    match r.u8()? {
        OP_GET => Ok(Op::Get { key: r.string()? }),
        OP_PUT => Ok(Op::Put { key: r.string()?, value: r.string()? }),
        OP_APPEND => Ok(Op::Append { key: r.string()?, value: r.string()? }),
        other => Err(r.unknown("op", other as u64)),
    }
}

/// Encodes a command for the log, version byte first.
pub fn encode_command(cmd: &Command) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(COMMAND_VERSION);
    match cmd {
        Command::Client(req) => {
            buf.put_u8(KIND_CLIENT);
            buf.put_u64_le(req.client.0);
            buf.put_u64_le(req.seq.0);
            put_op(&mut buf, &req.op);
        }
    }
    buf.freeze()
}

/// Decodes a command written by `encode_command`, refusing trailing bytes.
pub fn decode_command(data: &[u8]) -> Result<Command, DecodeError> {
    let mut r = Reader::new(data);
    let version = r.u8()?;
    if version != COMMAND_VERSION {
        return Err(r.unknown("command version", version as u64));
    }
    let cmd = match r.u8()? {
        KIND_CLIENT => {
            let client = ClientId(r.u64()?);
            let seq = Sequence(r.u64()?);
            let op = read_op(&mut r)?;
            Command::Client(ClientRequest { client, seq, op })
        }
        other => return Err(r.unknown("command kind", other as u64)),
    };
    r.finish()?;
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            ".{0,8}".prop_map(|key| Op::Get { key }),
            (".{0,8}", ".{0,20}").prop_map(|(key, value)| Op::Put { key, value }),
            (".{0,8}", ".{0,20}").prop_map(|(key, value)| Op::Append { key, value }),
        ]
    }

    proptest! {
        #[test]
        fn commands_round_trip(client in any::<u64>(), seq in any::<u64>(), op in op_strategy()) {
            let cmd = Command::Client(ClientRequest { client: ClientId(client), seq: Sequence(seq), op });
            prop_assert_eq!(decode_command(&encode_command(&cmd)), Ok(cmd));
        }

        // Bad bytes give an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_command(&data);
        }
    }

    #[test]
    fn truncation_and_garbage_are_reported() {
        let cmd = Command::Client(ClientRequest {
            client: ClientId(1),
            seq: Sequence(2),
            op: Op::Put { key: "k".into(), value: "v".into() },
        });
        let data = encode_command(&cmd);
        assert!(matches!(
            decode_command(&data[..data.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut long = data.to_vec();
        long.push(0);
        assert_eq!(decode_command(&long), Err(DecodeError::Trailing(1)));
        assert!(matches!(
            decode_command(&[9]),
            Err(DecodeError::Unknown { what: "command version", .. })
        ));
    }
}
