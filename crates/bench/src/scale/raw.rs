//! The machine's raw rates, to set the figures beside: sequential write + fdatasync to the disk
//! the nodes' data is on, and TCP over loopback. Both block; run them off the async runtime.

use std::fs::{self, OpenOptions};
use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use kvraft_raft::DetRng;

/// One write of either test.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Bytes moved and how long it took.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub bytes: u64,
    pub elapsed: Duration,
}

impl Rate {
    /// Decimal megabytes (10^6 bytes) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A chunk of bytes that no filesystem or link would find trivially compressible.
fn chunk() -> Vec<u8> {
    let mut rng = DetRng::new(CHUNK_BYTES as u64);
    let mut bytes = Vec::with_capacity(CHUNK_BYTES);
    while bytes.len() < CHUNK_BYTES {
        bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    bytes.truncate(CHUNK_BYTES);
    bytes
}

/// Writes `chunks` chunks of 1 MiB to a new file in `dir`, then one fdatasync; the time covers
/// both. The file is removed afterwards.
pub fn disk_write(dir: &Path, chunks: u64) -> Result<Rate, String> {
    let path = dir.join(format!("raw-disk-write-{}.bin", std::process::id()));
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let buf = chunk();
    let result = (|| {
        let mut file =
            OpenOptions::new().create(true).truncate(true).write(true).open(&path).map_err(fail)?;
        let started = Instant::now();
        for _ in 0..chunks {
            file.write_all(&buf).map_err(fail)?;
        }
        file.sync_data().map_err(fail)?;
        Ok(Rate { bytes: chunks * CHUNK_BYTES as u64, elapsed: started.elapsed() })
    })();
    let _ = fs::remove_file(&path);
    result
}

/// Sends `chunks` chunks of 1 MiB over a TCP connection on 127.0.0.1 to a reader thread; the
/// time runs from the first write until the reader has everything.
pub fn loopback(chunks: u64) -> Result<Rate, String> {
    let fail = |e: std::io::Error| format!("loopback: {e}");
    let listener = TcpListener::bind("127.0.0.1:0").map_err(fail)?;
    let address = listener.local_addr().map_err(fail)?;
    let reader = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let buf = chunk();
    let mut stream = TcpStream::connect(address).map_err(fail)?;
    stream.set_nodelay(true).map_err(fail)?;
    let started = Instant::now();
    for _ in 0..chunks {
        stream.write_all(&buf).map_err(fail)?;
    }
    stream.shutdown(Shutdown::Write).map_err(fail)?;
    let received = reader
        .join()
        .map_err(|_| "loopback: the reader thread panicked".to_string())?
        .map_err(fail)?;
    let elapsed = started.elapsed();
    let sent = chunks * CHUNK_BYTES as u64;
    if received != sent {
        return Err(format!("loopback: sent {sent} bytes, received {received}"));
    }
    Ok(Rate { bytes: received, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_rates_are_measured() {
        let dir = std::env::temp_dir();
        let disk = disk_write(&dir, 2).unwrap();
        assert_eq!(disk.bytes, 2 << 20);
        assert!(disk.mb_per_sec() > 0.0);
        let net = loopback(4).unwrap();
        assert_eq!(net.bytes, 4 << 20);
        assert!(net.mb_per_sec() > 0.0);
    }
}
