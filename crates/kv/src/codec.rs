//! Binary encodings of log commands and snapshots: fixed-width little-endian integers,
//! length-prefixed UTF-8 strings, a version byte in front. Decoding never panics: bad bytes give
//! a `DecodeError`.

use bytes::{BufMut, Bytes, BytesMut};

use crate::command::{ClientId, ClientRequest, Command, Op, Sequence};

pub const COMMAND_VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("unknown {what} {value} at offset {offset}")]
    Unknown { what: &'static str, value: u64, offset: usize },
    #[error("string at offset {offset} is not UTF-8")]
    NotUtf8 { offset: usize },
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

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let offset = self.offset;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { offset })
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn unknown(&self, what: &'static str, value: u64) -> DecodeError {
        DecodeError::Unknown { what, value, offset: self.offset }
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.data.len() - self.offset {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

pub fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_u32_le(s.len() as u32);
    buf.put_slice(s.as_bytes());
}

const OP_GET: u8 = 0;
const OP_PUT: u8 = 1;
const OP_APPEND: u8 = 2;
const KIND_CLIENT: u8 = 1;

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

pub fn read_op(r: &mut Reader<'_>) -> Result<Op, DecodeError> {
    match r.u8()? {
        OP_GET => Ok(Op::Get { key: r.string()? }),
        OP_PUT => Ok(Op::Put { key: r.string()?, value: r.string()? }),
        OP_APPEND => Ok(Op::Append { key: r.string()?, value: r.string()? }),
        other => Err(r.unknown("op", other as u64)),
    }
}

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
