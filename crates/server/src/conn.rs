//! Socket options and the orderly close every protocol on the shared port uses.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a connection closed with a last frame (a refusal, a protocol error) is drained,
/// so that closing it does not reset it before the other end has read that frame.
const LINGER_AFTER_LAST_FRAME: Duration = Duration::from_secs(1);

/// Without TCP_NODELAY a small reply can wait ~40 ms for the other side's delayed ACK (found
/// by the benchmark: every Get took 44 ms). Keepalive finds peers that vanished.
pub(crate) fn configure(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(Duration::from_secs(10))
        .with_interval(Duration::from_secs(2));
    let _ = SockRef::from(stream).set_tcp_keepalive(&keepalive);
}

/// Writes `last` (a frame saying why), closes our side, and drains the other side for a
/// while, so that closing does not reset the connection before the other end has read why.
pub(crate) async fn close_after(mut stream: TcpStream, last: &[u8]) {
    let _ = tokio::time::timeout(LINGER_AFTER_LAST_FRAME, async {
        stream.write_all(last).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    })
    .await;
}
