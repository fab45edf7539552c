//! The [`Disk`] trait and its error type.
//!
//! A `Disk` is one directory holding a flat namespace of files. The operations are the few the
//! WAL and snapshot code need, and each maps onto one POSIX call, so that the durability rules
//! a caller must follow with a real filesystem (fsync the file, then fsync the directory) are
//! the same rules [`crate::SimDisk`] checks.

use std::fmt;
use std::io;

use thiserror::Error;

/// The name used in errors about the directory itself (`sync_dir`, `list`).
pub const DIR_NAME: &str = ".";

/// A failed disk operation. Every variant names the file involved, because "IO error" without
/// a file name is useless when recovering a node by hand.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DiskError {
    /// The file does not exist.
    #[error("{name}: no such file")]
    NotFound {
        /// The file.
        name: String,
    },

    /// The file to create exists already.
    #[error("{name}: file already exists")]
    AlreadyExists {
        /// The file.
        name: String,
    },

    /// Names are single path components: no `/`, no NUL, not `.` or `..`, not empty.
    #[error("{name:?}: invalid file name")]
    InvalidName {
        /// The name refused.
        name: String,
    },

    /// `read_at` asked for bytes beyond the end of the file.
    #[error("{name}: read of {len} bytes at offset {offset} past end of file (length {file_len})")]
    ShortRead {
        /// The file.
        name: String,
        /// Where the read started.
        offset: u64,
        /// How many bytes it asked for.
        len: usize,
        /// The file's length.
        file_len: u64,
    },

    /// The disk is full; nothing was written.
    #[error("{name}: out of space")]
    OutOfSpace {
        /// The file written.
        name: String,
    },

    /// An fsync (of a file or of the directory) failed. What it was meant to make durable may
    /// be lost even though reads still return it; the caller must not retry the fsync and
    /// believe the data safe (Linux marks failed pages clean, so a retry "succeeds").
    #[error("{name}: fsync failed: {message}")]
    SyncFailed {
        /// The file (or the directory, [`DIR_NAME`]).
        name: String,
        /// The operating system's message.
        message: String,
    },

    /// Any other error from the operating system.
    #[error("{name}: {op} failed: {kind:?}: {message}")]
    Io {
        /// The file (or the directory, [`DIR_NAME`]).
        name: String,
        /// The operation that failed, e.g. "open" or "write".
        op: &'static str,
        /// The operating system's error kind.
        kind: io::ErrorKind,
        /// The operating system's message.
        message: String,
    },

    /// A write failed by fault injection ([`crate::FaultPlan`]). The first `persisted` bytes
    /// of the write may have reached the file (a torn write); the rest did not.
    #[error(
        "{name}: injected write fault at offset {offset} ({persisted} of {len} bytes written)"
    )]
    InjectedWriteFault {
        /// The file written.
        name: String,
        /// Where the write started.
        offset: u64,
        /// The write's length.
        len: usize,
        /// How many of its first bytes may have reached the file.
        persisted: usize,
    },

    /// An fsync failed by fault injection; same contract as [`DiskError::SyncFailed`].
    #[error("{name}: injected fsync fault")]
    InjectedSyncFault {
        /// The file (or the directory, [`DIR_NAME`]).
        name: String,
    },
}

impl DiskError {
    /// The file (or [`DIR_NAME`]) the error is about.
    pub fn name(&self) -> &str {
        match self {
            DiskError::NotFound { name }
            | DiskError::AlreadyExists { name }
            | DiskError::InvalidName { name }
            | DiskError::ShortRead { name, .. }
            | DiskError::OutOfSpace { name }
            | DiskError::SyncFailed { name, .. }
            | DiskError::Io { name, .. }
            | DiskError::InjectedWriteFault { name, .. }
            | DiskError::InjectedSyncFault { name } => name,
        }
    }

    /// True for a failed fsync, real or injected: the caller must stop writing (see
    /// [`DiskError::SyncFailed`]).
    pub fn is_sync_failure(&self) -> bool {
        matches!(self, DiskError::SyncFailed { .. } | DiskError::InjectedSyncFault { .. })
    }

    /// True if the error came from fault injection rather than the operating system.
    pub fn is_injected(&self) -> bool {
        matches!(self, DiskError::InjectedWriteFault { .. } | DiskError::InjectedSyncFault { .. })
    }

    /// Converts an OS error, keeping the well-known kinds as their own variants so callers can
    /// match on them the same way for `FileDisk` and `SimDisk`.
    pub(crate) fn from_io(name: &str, op: &'static str, err: io::Error) -> DiskError {
        let name = name.to_string();
        match err.kind() {
            io::ErrorKind::NotFound => DiskError::NotFound { name },
            io::ErrorKind::AlreadyExists => DiskError::AlreadyExists { name },
            _ if is_enospc(&err) => DiskError::OutOfSpace { name },
            kind => DiskError::Io { name, op, kind, message: err.to_string() },
        }
    }
}

/// `ErrorKind::StorageFull` needs Rust 1.83 and the workspace supports 1.80, so look at errno.
fn is_enospc(err: &io::Error) -> bool {
    const ENOSPC: i32 = 28; // Same value on Linux and the BSDs/macOS.
    cfg!(unix) && err.raw_os_error() == Some(ENOSPC)
}

/// Rejects names that would escape the flat namespace or mean something special to the OS.
/// Both implementations call this so they accept exactly the same names.
pub fn validate_name(name: &str) -> Result<(), DiskError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(DiskError::InvalidName { name: name.to_string() });
    }
    Ok(())
}

/// One directory of files, addressed by name.
///
/// Durability contract (the POSIX one, made explicit): after a crash, a file's bytes are only
/// guaranteed as of its last successful [`Disk::sync_data`], and a create/rename/remove is only
/// guaranteed after a later successful [`Disk::sync_dir`]. Reads always see the latest writes.
/// Writing past the end of a file leaves a hole that reads as zeros.
pub trait Disk: fmt::Debug + Send {
    /// Creates an empty file; fails with `AlreadyExists` if the name is taken.
    fn create(&mut self, name: &str) -> Result<(), DiskError>;

    /// Appends `data` at the end of the file and returns the offset it was written at.
    fn append(&mut self, name: &str, data: &[u8]) -> Result<u64, DiskError>;

    /// Writes `data` at `offset`, overwriting or extending the file.
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError>;

    /// Sets the file's length, cutting bytes off or extending it with zeros (used to drop a
    /// torn WAL tail).
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError>;

    /// Reads the whole file.
    fn read(&self, name: &str) -> Result<Vec<u8>, DiskError>;

    /// Reads exactly `len` bytes at `offset`, or fails with `ShortRead`.
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError>;

    /// The file's current length in bytes.
    fn file_len(&self, name: &str) -> Result<u64, DiskError>;

    /// Makes the file's current contents durable (fdatasync). Does not make its directory
    /// entry durable. On error, do not retry: see [`DiskError::SyncFailed`].
    fn sync_data(&mut self, name: &str) -> Result<(), DiskError>;

    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError>;

    /// Removes the file.
    fn remove(&mut self, name: &str) -> Result<(), DiskError>;

    /// The names of all files, sorted.
    fn list(&self) -> Result<Vec<String>, DiskError>;

    /// Makes all creates, renames and removes so far durable (fsync of the directory).
    fn sync_dir(&mut self) -> Result<(), DiskError>;
}
