//! What can go wrong for a client, and how gRPC statuses (which client frames carry too) are
//! read.

use std::time::Duration;

use kvraft_kv::KvError;
use tonic::{Code, Status};

/// Why an operation (or a status query) failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No endpoints were given.
    #[error("no endpoints given")]
    NoEndpoints,
    /// An endpoint is not `host:port`, or there are too many.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// An option is out of range (a zero call timeout).
    #[error("invalid client option: {0}")]
    InvalidOption(String),
    /// The operation's time ran out before any server executed it. For a write, the outcome
    /// is unknown: it may still take effect.
    #[error("no leader reachable after {} (tried {}{})", format_duration(*.after), .tried.join(", "), last_error_suffix(.last_error))]
    Timeout { after: Duration, tried: Vec<String>, last_error: Option<String> },
    /// The server refused the request as malformed or too large (gRPC `INVALID_ARGUMENT`).
    #[error("request refused: {0}")]
    InvalidArgument(String),
    /// The server is not in a state to serve the request (gRPC `FAILED_PRECONDITION`).
    #[error("request refused: {0}")]
    FailedPrecondition(String),
    /// The server stayed overloaded (gRPC `RESOURCE_EXHAUSTED`) through every retry.
    #[error("server overloaded: {message} (gave up after {attempts} attempts)")]
    Overloaded { message: String, attempts: u32 },
    /// The cluster forgot this client's session; the operation's outcome is unknown. The client
    /// has started a new session; later operations work.
    #[error("client session expired; the outcome of this operation is unknown")]
    SessionExpired,
    /// The cluster had already seen a newer request of this session (another process using
    /// the same client id?). The client has started a new session.
    #[error("stale request: this client id has already issued a newer request (is it shared?)")]
    Stale,
    /// A gRPC status this client does not retry.
    #[error("server error ({code:?}): {message}")]
    Server { code: Code, message: String },
    /// A status query could not reach its server.
    #[error("cannot reach {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
}

fn last_error_suffix(last: &Option<String>) -> String {
    match last {
        Some(e) => format!("; last error: {e}"),
        None => String::new(),
    }
}

/// `10 s`, `1.5 s`, `500 ms`.
pub fn format_duration(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// What to do about a gRPC status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// A transport-like failure: the request may or may not have arrived; try another server.
    Retry,
    /// The server is overloaded: retry it later.
    Overloaded,
    /// Retrying will not help.
    Fatal,
}

pub fn classify_status(code: Code) -> StatusClass {
    match code {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Cancelled
        | Code::Aborted
        | Code::Unknown
        | Code::Internal
        | Code::Unimplemented => StatusClass::Retry,
        Code::ResourceExhausted => StatusClass::Overloaded,
        _ => StatusClass::Fatal,
    }
}

pub(crate) fn fatal_error(status: &Status) -> ClientError {
    let message = status.message().to_string();
    match status.code() {
        Code::InvalidArgument => ClientError::InvalidArgument(message),
        Code::FailedPrecondition => ClientError::FailedPrecondition(message),
        code => ClientError::Server { code, message },
    }
}

/// A message and its causes as one line, without repeats or the generic "transport error":
/// "tcp connect error: Connection refused (os error 111)".
fn join_causes(first: String, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |text: String| {
        if !text.is_empty() && text != "transport error" && !parts.iter().any(|p| p.contains(&text))
        {
            parts.push(text);
        }
    };
    push(first);
    while let Some(cause) = source {
        push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        "transport error".to_string()
    } else {
        parts.join(": ")
    }
}

pub(crate) fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    join_causes(e.to_string(), e.source())
}

pub(crate) fn describe_status(status: &Status) -> String {
    let first = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    };
    join_causes(first, std::error::Error::source(status))
}

impl From<KvError> for ClientError {
    /// The errors a finished operation can end with (the Clerk retries `WrongLeader`).
    fn from(e: KvError) -> ClientError {
        match e {
            KvError::SessionExpired => ClientError::SessionExpired,
            KvError::Stale => ClientError::Stale,
            KvError::WrongLeader { .. } => unreachable!("the Clerk retries these"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status(Code::Unavailable), StatusClass::Retry);
        assert_eq!(classify_status(Code::DeadlineExceeded), StatusClass::Retry);
        assert_eq!(classify_status(Code::ResourceExhausted), StatusClass::Overloaded);
        assert_eq!(classify_status(Code::InvalidArgument), StatusClass::Fatal);
        assert_eq!(classify_status(Code::FailedPrecondition), StatusClass::Fatal);
        assert_eq!(
            fatal_error(&Status::invalid_argument("key too large: 5000 bytes")).to_string(),
            "request refused: key too large: 5000 bytes"
        );
    }

    #[test]
    fn errors_read_as_one_line() {
        let e = ClientError::Timeout {
            after: Duration::from_secs(10),
            tried: vec!["127.0.0.1:7001".into(), "127.0.0.1:7002".into()],
            last_error: Some("127.0.0.1:7002: connection refused".into()),
        };
        assert_eq!(
            e.to_string(),
            "no leader reachable after 10 s (tried 127.0.0.1:7001, 127.0.0.1:7002; \
             last error: 127.0.0.1:7002: connection refused)"
        );
        assert_eq!(format_duration(Duration::from_millis(500)), "500 ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
    }
}
