//! The key/value store's sequential specification, on top of the generic [`Model`].
//!
//! Keys never interact, so the model partitions the history per key and its state is the value
//! of that one key: a per-key search is far smaller than one over the whole store.

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{Model, Op};

/// A call to the key/value store.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Read a key; a missing key reads as `""`.
    Get { key: String },
    /// Overwrite a key.
    Put { key: String, value: String },
    /// Append to a key's value (a missing key is treated as `""`).
    Append { key: String, value: String },
}

impl KvInput {
    /// The key the call touches.
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Append { key, .. } => key,
        }
    }
}

impl fmt::Display for KvInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvInput::Get { key } => write!(f, "get({})", abbreviate(key)),
            KvInput::Put { key, value } => {
                write!(f, "put({}, {})", abbreviate(key), abbreviate(value))
            }
            KvInput::Append { key, value } => {
                write!(f, "append({}, {})", abbreviate(key), abbreviate(value))
            }
        }
    }
}

/// One recorded call to the key/value store. For a `Get`, `output` is the value it returned;
/// for `Put` and `Append` it is ignored (conventionally `""`).
pub type Operation = Op<KvInput, String>;

impl Op<KvInput, String> {
    /// A `Get` of `key` that returned `output`.
    pub fn get(
        client_id: u64,
        key: impl Into<String>,
        output: impl Into<String>,
        call: u64,
        ret: u64,
    ) -> Operation {
        Op { client_id, input: KvInput::Get { key: key.into() }, output: output.into(), call, ret }
    }

    /// A `Put` of `value` to `key`.
    pub fn put(
        client_id: u64,
        key: impl Into<String>,
        value: impl Into<String>,
        call: u64,
        ret: u64,
    ) -> Operation {
        let input = KvInput::Put { key: key.into(), value: value.into() };
        Op { client_id, input, output: String::new(), call, ret }
    }

    /// An `Append` of `value` to `key`.
    pub fn append(
        client_id: u64,
        key: impl Into<String>,
        value: impl Into<String>,
        call: u64,
        ret: u64,
    ) -> Operation {
        let input = KvInput::Append { key: key.into(), value: value.into() };
        Op { client_id, input, output: String::new(), call, ret }
    }
}

impl fmt::Display for Op<KvInput, String> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}: {}", self.client_id, self.input)?;
        if let KvInput::Get { .. } = self.input {
            write!(f, " -> {}", abbreviate(&self.output))?;
        }
        write!(f, "  [{}, {}]", self.call, self.ret)
    }
}

/// The key/value model: state is the value of the partition's single key.
///
/// This is the plain specification, on real strings. [`check_kv`](crate::check_kv) runs an
/// equivalent model on rolling hashes of the values instead (O(1) per step and 16 bytes per
/// state, where this one copies the whole value on every append), and only uses this one to
/// double-check the linearizations it finds and to print reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type State = String;
    type Input = KvInput;
    type Output = String;

    fn init(&self) -> String {
        String::new()
    }

    fn step(&self, state: &String, input: &KvInput, output: &String) -> Option<String> {
        match input {
            KvInput::Get { .. } => (output == state).then(|| state.clone()),
            KvInput::Put { value, .. } => Some(value.clone()),
            KvInput::Append { value, .. } => Some(format!("{state}{value}")),
        }
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
    }

    /// Appends only extend the value: the order is "is a prefix of".
    fn is_monotone(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. } | KvInput::Append { .. })
    }

    /// Only a Get can be refused.
    fn accepts_any_state(&self, input: &KvInput, _: &String) -> bool {
        !matches!(input, KvInput::Get { .. })
    }

    /// A Put sets the value whatever it was.
    fn blind_write(&self, input: &KvInput, _output: &String) -> Option<String> {
        match input {
            KvInput::Put { value, .. } => Some(value.clone()),
            KvInput::Get { .. } | KvInput::Append { .. } => None,
        }
    }

    /// A Get can be answered by an extension of the current value iff that value is a prefix
    /// of its output.
    fn may_accept_later(&self, state: &String, input: &KvInput, output: &String) -> bool {
        match input {
            KvInput::Get { .. } => output.starts_with(state.as_str()),
            KvInput::Put { .. } | KvInput::Append { .. } => true,
        }
    }

    /// One part per key, in key order, so reports and step counts are deterministic.
    fn partition(&self, history: &[Operation]) -> Vec<Vec<usize>> {
        let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, op) in history.iter().enumerate() {
            by_key.entry(op.input.key()).or_default().push(i);
        }
        by_key.into_values().collect()
    }
}

/// Quotes a string for a report, eliding the middle of long ones so a value built by hundreds
/// of appends stays readable (its two ends are usually where histories differ).
pub(crate) fn abbreviate(s: &str) -> String {
    const KEEP: usize = 24;
    let chars = s.chars().count();
    if chars <= 2 * KEEP + 8 {
        return format!("{s:?}");
    }
    let head: String = s.chars().take(KEEP).collect();
    let tail: String = s.chars().skip(chars - KEEP).collect();
    format!("{head:?}…{tail:?} ({chars} chars)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_follows_the_kv_semantics() {
        let m = KvModel;
        let s = m.init();
        let get = |k: &str| KvInput::Get { key: k.into() };
        assert_eq!(m.step(&s, &get("k"), &String::new()), Some(String::new()));
        assert_eq!(m.step(&s, &get("k"), &"x".to_string()), None);
        let put = KvInput::Put { key: "k".into(), value: "a".into() };
        let s = m.step(&s, &put, &String::new()).unwrap();
        let app = KvInput::Append { key: "k".into(), value: "b".into() };
        let s = m.step(&s, &app, &String::new()).unwrap();
        assert_eq!(s, "ab");
        // Put and Append outputs are ignored.
        assert_eq!(m.step(&s, &put, &"junk".to_string()), Some("a".to_string()));
    }

    #[test]
    fn partitions_by_key_in_key_order() {
        let h = vec![
            Operation::put(1, "b", "1", 0, 1),
            Operation::get(2, "a", "", 0, 1),
            Operation::append(1, "b", "2", 2, 3),
        ];
        assert_eq!(KvModel.partition(&h), vec![vec![1], vec![0, 2]]);
    }

    #[test]
    fn abbreviates_long_values_only() {
        assert_eq!(abbreviate("ab"), "\"ab\"");
        let long = "x".repeat(100);
        let shown = abbreviate(&long);
        assert!(shown.contains('…') && shown.ends_with("(100 chars)"), "{shown}");
    }
}
