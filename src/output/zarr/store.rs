//! [`AtomicFileStore`]: zarrs's file system store with whole-value writes made atomic. A value
//! (a shard, a metadata document) is written into a temporary file in a scratch folder beside
//! the store (same file system, outside the hierarchy readers list), synced, and renamed over
//! its key: a reader, or a worker killed mid-write, sees the old value or the new one, never
//! half of one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zarrs::filesystem::FilesystemStore;
use zarrs::storage::byte_range::ByteRangeIterator;
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytesIterator, OffsetBytesIterator, ReadableStorageTraits, StorageError,
    StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
};

use crate::io::{FileStore, IoError};

/// Suffix of the scratch folder beside a store (`.NAME.strata-tmp` for a store `NAME`) where
/// values are written before their rename.
pub const SCRATCH: &str = "strata-tmp";

/// The scratch folder of the store at `root`.
pub fn scratch_dir(root: &Path) -> PathBuf {
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    root.with_file_name(format!(".{name}.{SCRATCH}"))
}

/// A file system Zarr store whose writes are atomic per value.
#[derive(Debug)]
pub struct AtomicFileStore {
    root: PathBuf,
    scratch: PathBuf,
    inner: FilesystemStore,
}

impl AtomicFileStore {
    /// The store rooted at `root` (created if missing, with its scratch folder).
    ///
    /// **Errors**: [`StorageError`] when the folders cannot be made.
    pub fn new(root: &Path) -> Result<Arc<Self>, StorageError> {
        std::fs::create_dir_all(root)?;
        // an absolute root, so the scratch folder is its sibling whatever the path given
        let root = root.canonicalize()?;
        let scratch = scratch_dir(&root);
        std::fs::create_dir_all(&scratch)?;
        let inner = FilesystemStore::new(&root).map_err(|e| StorageError::Other(e.to_string()))?;
        Ok(Arc::new(AtomicFileStore { root, scratch, inner }))
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file holding `key`.
    pub fn path_of(&self, key: &StoreKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

impl ReadableStorageTraits for AtomicFileStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }

    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl ListableStorageTraits for AtomicFileStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

impl WritableStorageTraits for AtomicFileStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        // The same atomic write as `io::FileStore`'s `put`, with the temporary file kept out
        // of the hierarchy readers list.
        FileStore::write_atomic(&self.path_of(key), &value, Some(&self.scratch)).map_err(|e| match e {
            IoError::File { source, .. } => StorageError::from(source),
            other => StorageError::Other(other.to_string()),
        })
    }

    fn set_partial_many(&self, key: &StoreKey, offset_values: OffsetBytesIterator) -> Result<(), StorageError> {
        // Never used by strata (shards are written whole); kept for the trait, not atomic.
        self.inner.set_partial_many(key, offset_values)
    }

    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }

    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }

    fn supports_set_partial(&self) -> bool {
        false
    }
}
