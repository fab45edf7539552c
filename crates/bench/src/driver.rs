//! What the load loop needs from a system under test: one session per bench client, each
//! running one operation at a time. The kvraft and etcd drivers implement it, so both systems
//! face the same loop, key choices, histogram and report.

use std::future::Future;

use crate::workload::OpKind;

/// A connected system under test.
pub trait Driver: Send + Sync + 'static {
    type Session: Session;

    /// The session of bench client `index` (on connection `index` mod the connection count).
    fn session(&self, index: usize) -> Self::Session;
}

/// One bench client's handle: one operation at a time.
pub trait Session: Send + 'static {
    /// Runs one operation to completion (retries included), or says why it failed.
    fn execute(
        &mut self,
        op: OpKind,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), String>> + Send;
}
