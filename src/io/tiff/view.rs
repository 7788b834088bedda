//! A sparse, read-only view of a remote file: the byte segments fetched so far, readable
//! through `Read + Seek` so the `tiff` crate can parse and decode from it.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// The fetched segments of one file, keyed by start offset. Cloning shares the bytes.
#[derive(Debug, Clone, Default)]
pub struct Segments {
    map: BTreeMap<u64, Bytes>,
}

impl Segments {
    /// Adds the bytes found at `offset`.
    pub fn insert(&mut self, offset: u64, bytes: Bytes) {
        if !bytes.is_empty() {
            self.map.insert(offset, bytes);
        }
    }

    /// The end of the contiguous run of bytes starting at 0.
    pub fn prefix_len(&self) -> u64 {
        let mut end = 0;
        for (&start, b) in &self.map {
            if start > end {
                break;
            }
            end = end.max(start + b.len() as u64);
        }
        end
    }

    /// Bytes held.
    pub fn len(&self) -> u64 {
        self.map.values().map(|b| b.len() as u64).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The bytes of `range` when one held segment covers them all (no copy).
    pub fn slice(&self, range: std::ops::Range<u64>) -> Option<Bytes> {
        let (&start, b) = self
            .map
            .range(..=range.start)
            .rev()
            .find(|(&s, b)| s + b.len() as u64 >= range.end)?;
        Some(b.slice((range.start - start) as usize..(range.end - start) as usize))
    }

    /// The longest held slice starting at `pos` (empty when `pos` is not held).
    fn at(&self, pos: u64) -> &[u8] {
        // Segments may overlap; any segment covering `pos` will do, the latest-starting one first.
        for (&start, b) in self.map.range(..=pos).rev() {
            let end = start + b.len() as u64;
            if pos < end {
                return &b[(pos - start) as usize..];
            }
        }
        &[]
    }
}

/// `Read + Seek` over [`Segments`]. A read of bytes not held fails, and the range it wanted is
/// recorded in `missing`, so the caller can fetch it and parse again.
#[derive(Debug, Clone)]
pub struct SparseReader {
    segments: Arc<Segments>,
    extra: Arc<Segments>,
    pos: u64,
    len: Option<u64>,
    missing: Arc<Mutex<Option<Range<u64>>>>,
}

impl SparseReader {
    /// A reader over the header segments and, for decoding, the tile segments. `len` is the
    /// file's size when known (reads past it are errors, not fetches).
    pub fn new(segments: Arc<Segments>, extra: Arc<Segments>, len: Option<u64>) -> Self {
        SparseReader {
            segments,
            extra,
            pos: 0,
            len,
            missing: Arc::default(),
        }
    }

    /// Where the recorded miss is kept (shared with clones made before the miss).
    pub fn missing(&self) -> Arc<Mutex<Option<Range<u64>>>> {
        self.missing.clone()
    }
}

impl Read for SparseReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.len.is_some_and(|len| self.pos >= len) {
            return Ok(0);
        }
        let held = match self.segments.at(self.pos) {
            [] => self.extra.at(self.pos),
            s => s,
        };
        if held.is_empty() {
            let want = buf.len() as u64;
            let end = self.len.map_or(self.pos + want, |len| (self.pos + want).min(len));
            *self.missing.lock().unwrap_or_else(|e| e.into_inner()) = Some(self.pos..end);
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "bytes not fetched"));
        }
        let n = held.len().min(buf.len());
        buf[..n].copy_from_slice(&held[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SparseReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self
                .len
                .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "size unknown"))?
                .checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_held_bytes_and_records_misses() {
        let mut s = Segments::default();
        s.insert(0, Bytes::from_static(b"abcd"));
        s.insert(10, Bytes::from_static(b"klmn"));
        assert_eq!(s.prefix_len(), 4);
        let mut r = SparseReader::new(Arc::new(s), Arc::default(), Some(20));
        let mut buf = [0u8; 4];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abcd");
        r.seek(SeekFrom::Start(11)).unwrap();
        let mut two = [0u8; 2];
        r.read_exact(&mut two).unwrap();
        assert_eq!(&two, b"lm");
        r.seek(SeekFrom::Start(5)).unwrap();
        assert!(r.read_exact(&mut buf).is_err());
        assert_eq!(*r.missing().lock().unwrap(), Some(5..9));
        r.seek(SeekFrom::Start(18)).unwrap();
        assert!(r.read_exact(&mut buf).is_err());
        assert_eq!(*r.missing().lock().unwrap(), Some(18..20));
    }
}
