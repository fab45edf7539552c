//! How a client reaches a cluster, and its session's identity.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kvraft_kv::ClientId;

/// How to reach a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The servers' client addresses, `host:port` (an `http://` prefix is accepted).
    pub endpoints: Vec<String>,
    /// The limit for one attempt at one server (connecting included). Default 1 s.
    pub call_timeout: Duration,
    /// The limit for a whole operation, retries included; `None` retries forever. Default
    /// `None`.
    pub op_timeout: Option<Duration>,
    /// The session's client id; `None` (the default) draws a random one. Two clients must
    /// never share one.
    pub client_id: Option<ClientId>,
    /// How calls travel. Default [`Transport::Frames`].
    pub transport: Transport,
}

/// How a client's calls travel to the servers; the same calls and answers either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// Client frames on plain TCP (`frames.proto`): the lowest latency.
    #[default]
    Frames,
    /// gRPC (`KvService` in `kv.proto`), as clients in other languages use.
    Grpc,
}

impl Transport {
    /// The name `FromStr` reads: "frames" or "grpc".
    pub fn name(self) -> &'static str {
        match self {
            Transport::Frames => "frames",
            Transport::Grpc => "grpc",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Transport, String> {
        match s {
            "frames" => Ok(Transport::Frames),
            "grpc" => Ok(Transport::Grpc),
            _ => Err(format!("unknown transport {s:?} (expected frames or grpc)")),
        }
    }
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            endpoints: Vec::new(),
            call_timeout: Duration::from_secs(1),
            op_timeout: None,
            client_id: None,
            transport: Transport::default(),
        }
    }
}

impl ClientOptions {
    /// The defaults, with these endpoints.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> ClientOptions {
        ClientOptions {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..ClientOptions::default()
        }
    }
}

/// A random non-zero client id: a hash of the time, the process id and a counter, keyed by the
/// standard library's per-process random hash keys.
pub fn new_client_id() -> ClientId {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut h = RandomState::new().build_hasher();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        h.write_u128(now.as_nanos());
        h.write_u32(std::process::id());
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let id = h.finish();
        if id != 0 {
            return ClientId(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_random_and_non_zero() {
        let ids: std::collections::BTreeSet<u64> = (0..1000).map(|_| new_client_id().0).collect();
        assert_eq!(ids.len(), 1000);
        assert!(!ids.contains(&0));
    }
}
