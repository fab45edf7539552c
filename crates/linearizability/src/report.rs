//! What the key/value checker answers, and how a violation is explained to a person.

use std::fmt;

use crate::kv_model::{abbreviate, Operation};

/// The verdict on a key/value history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult {
    /// The history is linearizable.
    Ok,
    /// It is not; the report explains the first key (in key order) found to be violated.
    Illegal(Box<IllegalReport>),
    /// The step budget ran out before a verdict (and no violation had been found by then).
    Unknown,
}

impl CheckResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }

    pub fn is_illegal(&self) -> bool {
        matches!(self, CheckResult::Illegal(_))
    }

    pub fn is_unknown(&self) -> bool {
        matches!(self, CheckResult::Unknown)
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Ok => write!(f, "linearizable"),
            CheckResult::Unknown => write!(f, "unknown: the step budget ran out before a verdict"),
            CheckResult::Illegal(report) => report.fmt(f),
        }
    }
}

/// Why a key's history is not linearizable.
///
/// `Display` prints a multi-line explanation, eliding the middle of long lists; the alternate
/// form (`{:#}`) prints every operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IllegalReport {
    /// The key whose operations cannot be linearized.
    pub key: String,
    /// The longest sequence of this key's operations that the search could linearize, in
    /// linearization order.
    pub longest_prefix: Vec<Operation>,
    /// The key's operations not in `longest_prefix`, by call time: at least one of them can be
    /// placed after that prefix neither by the key's semantics nor by real-time order.
    pub unexplained: Vec<Operation>,
    /// The key's value after `longest_prefix`.
    pub value_after_prefix: String,
}

/// Lists longer than this are shortened in the plain `Display` form.
const SHOWN: usize = 20;

impl fmt::Display for IllegalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.longest_prefix.len() + self.unexplained.len();
        let everything = f.alternate();
        writeln!(
            f,
            "not linearizable: no order of the {total} operations on key {} respects both their \
             real-time intervals and the key's sequential semantics",
            abbreviate(&self.key)
        )?;
        writeln!(
            f,
            "longest linearizable prefix: {} of {total} operations, in linearization order:",
            self.longest_prefix.len()
        )?;
        let skip = if everything { 0 } else { self.longest_prefix.len().saturating_sub(SHOWN) };
        if skip > 0 {
            writeln!(f, "  ... {skip} earlier operations elided ({{:#}} shows all)")?;
        }
        for (i, op) in self.longest_prefix.iter().enumerate().skip(skip) {
            writeln!(f, "  {:>4}. {op}", i + 1)?;
        }
        writeln!(f, "value of the key after it: {}", abbreviate(&self.value_after_prefix))?;
        writeln!(f, "operations that cannot be explained after it ({}):", self.unexplained.len())?;
        let shown = if everything { self.unexplained.len() } else { SHOWN };
        for op in self.unexplained.iter().take(shown) {
            writeln!(f, "        {op}")?;
        }
        if self.unexplained.len() > shown {
            writeln!(f, "  ... and {} more ({{:#}} shows all)", self.unexplained.len() - shown)?;
        }
        Ok(())
    }
}
