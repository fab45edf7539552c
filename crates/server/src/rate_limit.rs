//! A token bucket per client connection (remote address), refilled every second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct RateLimiter {
    pub(crate) per_sec: u32,
    buckets: Mutex<HashMap<SocketAddr, (Instant, u32)>>,
}

impl RateLimiter {
    pub(crate) fn new(per_sec: u32) -> RateLimiter {
        RateLimiter { per_sec, buckets: Mutex::new(HashMap::new()) }
    }

    /// Whether one more request from `peer` fits this second's budget (and counts it).
    pub(crate) fn admit(&self, peer: SocketAddr) -> bool {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > 100_000 {
            // Forget idle connections rather than grow without bound.
            buckets.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(1));
        }
        let (since, used) = buckets.entry(peer).or_insert((now, 0));
        if now.duration_since(*since) >= Duration::from_secs(1) {
            *since = now;
            *used = 0;
        }
        if *used < self.per_sec {
            *used += 1;
            true
        } else {
            false
        }
    }
}
