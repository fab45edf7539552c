//! [`FileDisk`]: the [`Disk`] trait over `std::fs`, one real directory.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::disk::{validate_name, Disk, DiskError, DIR_NAME};

/// Files in one directory of the real filesystem.
///
/// Write handles are kept open between calls: opening a file per append would dominate WAL
/// cost, and an fsync through the fd that did the writes is the one Linux is sure to report
/// a writeback error on (a freshly opened fd may not see errors that happened before it).
#[derive(Debug)]
pub struct FileDisk {
    dir: PathBuf,
    handles: HashMap<String, File>,
}

impl FileDisk {
    /// Uses `dir` as the disk, creating it (and its parents) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileDisk, DiskError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)
            .map_err(|e| DiskError::from_io(&dir.display().to_string(), "create_dir", e))?;
        Ok(FileDisk { dir, handles: HashMap::new() })
    }

    /// The directory this disk lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, DiskError> {
        validate_name(name)?;
        Ok(self.dir.join(name))
    }

    /// The cached read/write handle for `name`, opened on first use; `NotFound` if absent.
    fn handle(&mut self, name: &str) -> Result<&mut File, DiskError> {
        let path = self.path(name)?;
        match self.handles.entry(name.to_string()) {
            Entry::Occupied(slot) => Ok(slot.into_mut()),
            Entry::Vacant(slot) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| DiskError::from_io(name, "open", e))?;
                Ok(slot.insert(file))
            }
        }
    }
}

impl Disk for FileDisk {
    fn create(&mut self, name: &str) -> Result<(), DiskError> {
        let path = self.path(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| DiskError::from_io(name, "create", e))?;
        self.handles.insert(name.to_string(), file);
        Ok(())
    }

    fn append(&mut self, name: &str, data: &[u8]) -> Result<u64, DiskError> {
        let file = self.handle(name)?;
        let offset =
            file.seek(SeekFrom::End(0)).map_err(|e| DiskError::from_io(name, "seek", e))?;
        file.write_all(data).map_err(|e| DiskError::from_io(name, "write", e))?;
        Ok(offset)
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let file = self.handle(name)?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| DiskError::from_io(name, "seek", e))?;
        file.write_all(data).map_err(|e| DiskError::from_io(name, "write", e))
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        let file = self.handle(name)?;
        file.set_len(len).map_err(|e| DiskError::from_io(name, "truncate", e))
    }

    fn read(&self, name: &str) -> Result<Vec<u8>, DiskError> {
        fs::read(self.path(name)?).map_err(|e| DiskError::from_io(name, "read", e))
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, DiskError> {
        // A fresh read-only handle: reads take `&self`, and they happen at recovery, not on
        // the hot path.
        let mut file =
            File::open(self.path(name)?).map_err(|e| DiskError::from_io(name, "open", e))?;
        let file_len = file.metadata().map_err(|e| DiskError::from_io(name, "stat", e))?.len();
        if !matches!(offset.checked_add(len as u64), Some(end) if end <= file_len) {
            return Err(DiskError::ShortRead { name: name.to_string(), offset, len, file_len });
        }
        file.seek(SeekFrom::Start(offset)).map_err(|e| DiskError::from_io(name, "seek", e))?;
        let mut buf = vec![0; len];
        file.read_exact(&mut buf).map_err(|e| DiskError::from_io(name, "read", e))?;
        Ok(buf)
    }

    fn file_len(&self, name: &str) -> Result<u64, DiskError> {
        let meta =
            fs::metadata(self.path(name)?).map_err(|e| DiskError::from_io(name, "stat", e))?;
        Ok(meta.len())
    }

    fn sync_data(&mut self, name: &str) -> Result<(), DiskError> {
        let file = self.handle(name)?;
        file.sync_data()
            .map_err(|e| DiskError::SyncFailed { name: name.to_string(), message: e.to_string() })
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        let (from_path, to_path) = (self.path(from)?, self.path(to)?);
        fs::rename(&from_path, &to_path).map_err(|e| DiskError::from_io(from, "rename", e))?;
        if from != to {
            // An open fd follows its inode across a rename, so the handle stays valid under
            // the new name; whatever `to` used to name is gone.
            self.handles.remove(to);
            if let Some(file) = self.handles.remove(from) {
                self.handles.insert(to.to_string(), file);
            }
        }
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        let path = self.path(name)?;
        fs::remove_file(&path).map_err(|e| DiskError::from_io(name, "remove", e))?;
        self.handles.remove(name);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, DiskError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| DiskError::from_io(DIR_NAME, "read_dir", e))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| DiskError::from_io(DIR_NAME, "read_dir", e))?;
            let is_file =
                entry.file_type().map_err(|e| DiskError::from_io(DIR_NAME, "stat", e))?.is_file();
            // Non-UTF-8 names cannot have been created through this API; skip them rather
            // than fail the whole listing.
            if let (true, Ok(name)) = (is_file, entry.file_name().into_string()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&mut self) -> Result<(), DiskError> {
        // On Linux, fsync of a directory fd commits its entries (creates, renames, removes).
        let dir = File::open(&self.dir).map_err(|e| DiskError::from_io(DIR_NAME, "open", e))?;
        dir.sync_all().map_err(|e| DiskError::SyncFailed {
            name: DIR_NAME.to_string(),
            message: e.to_string(),
        })
    }
}
