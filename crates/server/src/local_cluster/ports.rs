//! Free loopback ports for clusters that run on one machine.

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use kvraft_raft::DetRng;

/// The lowest port probed: below it live the well-known and registered services.
const LOWEST: u16 = 20_000;
/// Random probes before falling back on ports the system picks.
const PROBES: usize = 1000;

/// `n` distinct loopback ports that were free a moment ago, preferably below the ephemeral
/// range, so that no outgoing connection takes one while its node is down for a restart (a
/// port the system hands out for binding port 0 is ephemeral and can be reused that way).
///
/// Every probe stays bound until all `n` are chosen, so no port is chosen twice. Processes
/// that call this at the same moment probe different ports: the generator is seeded with the
/// clock and the process id.
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
    let mut rng = DetRng::new(nanos ^ u64::from(std::process::id()) << 32);
    let mut held = Vec::new();
    let mut ports = Vec::new();
    // An ephemeral range that starts too low leaves no room to probe below it.
    if ephemeral_low > LOWEST + 1000 {
        for _ in 0..PROBES {
            if ports.len() == n {
                break;
            }
            let port = LOWEST + rng.below(u64::from(ephemeral_low - LOWEST)) as u16;
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
                ports.push(port);
                held.push(listener);
            }
        }
    }
    while ports.len() < n {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        ports.push(listener.local_addr()?.port());
        held.push(listener);
    }
    Ok(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_and_free() {
        let ports = free_ports(5).unwrap();
        assert_eq!(ports.len(), 5);
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 5, "{ports:?}");
        for port in ports {
            TcpListener::bind(("127.0.0.1", port)).expect("a chosen port is free again");
        }
    }
}
