//! Uploading: a read-and-hash thread, a sealing thread, one PATCH per part.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ferry_core::KeyBytes;
use ferry_core::attachment::{Layout, SEGMENT, SegmentCipher};
use ferry_proto::{ErrorCode, MailboxId};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::transport::ClientError;

use super::blob_client::BlobClient;
use super::{PART_SEGMENTS, Progress, RetryPolicy, TransferError, TransferStats, io};

/// Where the bytes of an upload come from.
#[derive(Clone)]
pub enum Source {
    /// A file on disk, which must not change during the transfer.
    File {
        /// Its path.
        path: PathBuf,
        /// Its size when the transfer started.
        size: u64,
        /// Its modification time when the transfer started.
        modified: Option<SystemTime>,
        /// Same-length overwrites applied as it is read (metadata removed
        /// from a video without copying it), sorted by offset.
        patches: Arc<Vec<Patch>>,
    },
    /// Bytes in memory (an encoded voice message).
    Memory(Arc<Zeroizing<Vec<u8>>>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Source(..)")
    }
}

impl Source {
    /// A file source, remembering its size and modification time.
    pub fn file(path: &Path) -> Result<Self, TransferError> {
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(TransferError::Io("not a regular file".into()));
        }
        Ok(Self::File {
            path: path.to_owned(),
            size: meta.len(),
            modified: meta.modified().ok(),
            patches: Arc::new(Vec::new()),
        })
    }

    /// This file source, read with `patches` written over it (each within
    /// the file: the size and time it must keep were taken before the
    /// patches were computed, so a change in between is caught).
    pub fn with_patches(mut self, mut patches: Vec<Patch>) -> Result<Self, TransferError> {
        if let Self::File {
            size, patches: p, ..
        } = &mut self
        {
            if patches.iter().any(|p| {
                p.at.saturating_add(p.len) > *size
                    || p.bytes.as_ref().is_some_and(|b| b.len() as u64 != p.len)
            }) {
                return Err(TransferError::Io("a patch lies outside the file".into()));
            }
            patches.sort_by_key(|p| p.at);
            *p = Arc::new(patches);
        }
        Ok(self)
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Self::File { size, .. } => *size,
            Self::Memory(b) => b.len() as u64,
        }
    }

    fn open(&self) -> Result<Reader, TransferError> {
        match self {
            Self::File {
                path,
                size,
                modified,
                patches,
            } => {
                let f = File::open(path).map_err(io)?;
                let r = Reader::File(f, *size, *modified, patches.clone(), 0);
                r.unchanged()?;
                Ok(r)
            }
            Self::Memory(b) => Ok(Reader::Memory(b.clone(), 0)),
        }
    }
}

enum Reader {
    /// The file, with the size and modification time it must keep, the
    /// overwrites to apply and the position.
    File(File, u64, Option<SystemTime>, Arc<Vec<Patch>>, u64),
    Memory(Arc<Zeroizing<Vec<u8>>>, usize),
}

/// A same-length overwrite of a file as it is read: `len` bytes at `at`
/// become zeros, or `bytes`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Patch {
    /// Offset in the file.
    pub at: u64,
    /// Bytes replaced.
    pub len: u64,
    /// What replaces them (`len` bytes); `None`: zeros.
    pub bytes: Option<Vec<u8>>,
}

/// Writes the parts of `patches` that fall in `buf` (read at `at`) over it.
fn overlay(buf: &mut [u8], at: u64, patches: &[Patch]) {
    let end = at + buf.len() as u64;
    for p in patches {
        let p_end = p.at.saturating_add(p.len);
        if p_end <= at || p.at >= end {
            continue;
        }
        let from = p.at.max(at);
        let to = p_end.min(end);
        // In range by the checks above.
        let (b0, b1) = ((from - at) as usize, (to - at) as usize);
        match &p.bytes {
            Some(bytes) => {
                let (s0, s1) = ((from - p.at) as usize, (to - p.at) as usize);
                if let Some(src) = bytes.get(s0..s1) {
                    buf[b0..b1].copy_from_slice(src);
                }
            }
            None => buf[b0..b1].fill(0),
        }
    }
}

impl Reader {
    /// Fails if the file's size or modification time changed.
    fn unchanged(&self) -> Result<(), TransferError> {
        if let Self::File(f, size, modified, ..) = self {
            let meta = f.metadata().map_err(io)?;
            if meta.len() != *size || meta.modified().ok() != *modified {
                return Err(TransferError::FileChanged);
            }
        }
        Ok(())
    }

    fn seek(&mut self, to: u64) -> Result<(), TransferError> {
        match self {
            Self::File(f, .., pos) => {
                *pos = to;
                f.seek(SeekFrom::Start(to)).map(|_| ()).map_err(io)
            }
            Self::Memory(b, at) => {
                *at = usize::try_from(to).unwrap_or(usize::MAX).min(b.len());
                Ok(())
            }
        }
    }

    /// Fills `buf` completely; a short read means the file shrank.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), TransferError> {
        match self {
            Self::File(f, _, _, patches, pos) => {
                f.read_exact(buf).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        TransferError::FileChanged
                    } else {
                        io(e)
                    }
                })?;
                overlay(buf, *pos, patches);
                *pos += buf.len() as u64;
                Ok(())
            }
            Self::Memory(b, at) => {
                let src = b
                    .get(*at..*at + buf.len())
                    .ok_or(TransferError::FileChanged)?;
                buf.copy_from_slice(src);
                *at += buf.len();
                Ok(())
            }
        }
    }

    fn at_end(&mut self) -> Result<bool, TransferError> {
        match self {
            Self::File(f, ..) => {
                let mut one = [0u8; 1];
                Ok(f.read(&mut one).map_err(io)? == 0)
            }
            Self::Memory(b, at) => Ok(*at == b.len()),
        }
    }
}

/// Seals segments in order while hashing the plaintext.
struct Producer {
    reader: Reader,
    cipher: SegmentCipher,
    hasher: Sha256,
    /// Next segment to produce.
    next: u64,
    /// Tags of the segments sealed since the last confirmed part: a segment
    /// sealed again (after a cut) must come out identical, else the file
    /// changed and the same key and position would seal two plaintexts.
    tags: std::collections::HashMap<u64, [u8; 16]>,
}

impl Producer {
    fn layout(&self) -> Layout {
        self.cipher.layout()
    }

    /// Moves to segment `target` from a checkpoint at or before it, hashing
    /// (but not sealing) the plaintext in between.
    fn position(&mut self, checkpoint: &(u64, Sha256), target: u64) -> Result<(), TransferError> {
        let (at, hasher) = checkpoint;
        self.hasher = hasher.clone();
        self.reader.seek(at * SEGMENT)?;
        self.next = *at;
        let mut buf = Zeroizing::new(vec![0u8; SEGMENT as usize]);
        while self.next < target {
            let real = self.layout().real_len(self.next) as usize;
            self.reader.fill(&mut buf[..real])?;
            self.hasher.update(&buf[..real]);
            self.next += 1;
        }
        Ok(())
    }

    /// Produces segments `self.next..end` into `tx`, the first one without
    /// its first `skip` bytes. Two stages on two threads: this one reads and
    /// hashes, a scoped one seals. Stops quietly when `tx` is closed.
    fn produce_part(
        &mut self,
        end: u64,
        skip: usize,
        tx: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    ) -> Result<(), TransferError> {
        let layout = self.layout();
        let Self {
            reader,
            cipher,
            hasher,
            next,
            tags,
        } = self;
        let cipher = &*cipher;
        let first = *next;
        let (ptx, prx) = std::sync::mpsc::sync_channel::<Zeroizing<Vec<u8>>>(4);
        std::thread::scope(|scope| {
            let sealer = scope.spawn(move || -> Result<(), TransferError> {
                let mut skip = skip;
                for (i, mut plain) in (first..).zip(prx) {
                    cipher.seal(i, &mut plain)?;
                    let mut tag = [0u8; 16];
                    tag.copy_from_slice(&plain[plain.len() - 16..]);
                    if tags.insert(i, tag).is_some_and(|old| old != tag) {
                        return Err(TransferError::FileChanged);
                    }
                    let mut sealed = std::mem::take(&mut *plain);
                    if skip > 0 {
                        sealed.drain(..skip.min(sealed.len()));
                        skip = 0;
                    }
                    if tx.blocking_send(Ok(sealed)).is_err() {
                        break;
                    }
                }
                Ok(())
            });
            let mut read = Ok(());
            while *next < end {
                match read_segment(reader, hasher, layout, next) {
                    Ok(buf) => {
                        if ptx.send(Zeroizing::new(buf)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        read = Err(e);
                        break;
                    }
                }
            }
            drop(ptx);
            let sealed = sealer
                .join()
                .unwrap_or_else(|_| Err(TransferError::Io("sealing thread failed".into())));
            if read.is_err() || sealed.is_err() {
                // Fail the request rather than let the relay take a short part.
                let _ = tx.blocking_send(Err(std::io::Error::other("source failed")));
            }
            read.and(sealed)
        })
    }

    fn digest(&self) -> [u8; 32] {
        self.hasher.clone().finalize().into()
    }
}

/// Reads and hashes segment `*next`'s plaintext, padded, with room for its
/// tag, and moves `*next` on.
fn read_segment(
    reader: &mut Reader,
    hasher: &mut Sha256,
    layout: Layout,
    next: &mut u64,
) -> Result<Vec<u8>, TransferError> {
    let i = *next;
    let real = layout.real_len(i) as usize;
    let mut buf = vec![0u8; layout.plain_len(i) as usize];
    buf.reserve_exact(16);
    reader.fill(&mut buf[..real])?;
    hasher.update(&buf[..real]);
    if layout.real_len(i + 1) == 0 && real > 0 && !reader.at_end()? {
        return Err(TransferError::FileChanged);
    }
    *next += 1;
    Ok(buf)
}

/// Uploads `source` sealed under `key` to blob `id`, resuming from the
/// relay's offset; returns the plaintext digest and the figures.
pub async fn upload(
    client: &BlobClient,
    id: MailboxId,
    key: &KeyBytes,
    source: &Source,
    policy: RetryPolicy,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<([u8; 32], TransferStats), TransferError> {
    let layout = Layout::new(source.size())?;
    let total = layout.blob_len();
    let mut producer = Producer {
        reader: source.open()?,
        cipher: SegmentCipher::new(key, layout),
        hasher: Sha256::new(),
        next: 0,
        tags: std::collections::HashMap::new(),
    };
    // The producer's state at the start of the last confirmed part.
    let mut checkpoint = (0u64, Sha256::new());
    let mut stats = TransferStats {
        blob_len: total,
        wire_bytes: 0,
        resumes: 0,
    };
    let mut failures = 0u32;
    let mut delay = policy.delay;
    let mut confirmed: Option<u64> = None;
    let mut resuming = false;
    let mut parts = 0u64;
    let fault_after: Option<u64> = std::env::var("FERRY_FAULT_EXIT_AFTER_PARTS")
        .ok()
        .and_then(|v| v.parse().ok());
    loop {
        let offset = match confirmed {
            Some(o) => o,
            None => match client.offset(id).await {
                Ok(o) => o,
                Err(e) if e.code() == Some(ErrorCode::NotFound) => return Err(TransferError::Gone),
                Err(e) if e.is_permanent() => return Err(e.into()),
                Err(_) => {
                    failures += 1;
                    if failures >= policy.attempts {
                        return Err(TransferError::Interrupted {
                            done: layout.blob_offset(checkpoint.0),
                            total,
                        });
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(policy.max_delay);
                    continue;
                }
            },
        };
        if resuming {
            stats.resumes += 1;
            progress(Progress::Resumed { offset });
            resuming = false;
        }
        progress(Progress::Bytes {
            done: offset,
            total,
        });
        // All of it at the relay: only the digest is missing.
        let seg = if offset >= total {
            layout.segments
        } else {
            layout.segment_at(offset)
        };
        producer.reader.unchanged()?;
        if checkpoint.0 > seg {
            checkpoint = (0, Sha256::new());
        }
        let cp = checkpoint.clone();
        let (mut p, r) = tokio::task::spawn_blocking(move || {
            let r = producer.position(&cp, seg);
            (producer, r)
        })
        .await
        .map_err(|_| TransferError::Io("task failed".into()))?;
        r?;
        checkpoint = (seg, p.hasher.clone());
        if offset >= total {
            // Everything is at the relay; only the digest was missing.
            if !p.reader.at_end()? {
                return Err(TransferError::FileChanged);
            }
            return Ok((p.digest(), stats));
        }
        let end_seg = (seg + PART_SEGMENTS).min(layout.segments);
        let part_end = if end_seg == layout.segments {
            total
        } else {
            layout.blob_offset(end_seg)
        };
        let skip = usize::try_from(offset - layout.blob_offset(seg)).unwrap_or(0);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let producer_task = tokio::task::spawn_blocking(move || {
            let r = p.produce_part(end_seg, skip, &tx);
            (p, r)
        });
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let stream = futures_util::stream::unfold(rx, move |mut rx| {
            let counter = counter.clone();
            async move {
                let item = rx.recv().await?;
                if let Ok(b) = &item {
                    counter.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                Some((item, rx))
            }
        });
        let patch = client.patch(
            id,
            offset,
            part_end - offset,
            reqwest::Body::wrap_stream(stream),
        );
        tokio::pin!(patch);
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let result = loop {
            tokio::select! {
                r = &mut patch => break r,
                _ = tick.tick() => progress(Progress::Bytes {
                    done: offset + sent.load(Ordering::Relaxed),
                    total,
                }),
            }
        };
        stats.wire_bytes += sent.load(Ordering::Relaxed);
        let (p, produced) = producer_task
            .await
            .map_err(|_| TransferError::Io("task failed".into()))?;
        producer = p;
        produced?;
        match result {
            Ok(new) if new == part_end => {
                parts += 1;
                if fault_after.is_some_and(|n| parts >= n) {
                    // Fault injection for crash tests: die between parts.
                    std::process::exit(75);
                }
                failures = 0;
                delay = policy.delay;
                confirmed = Some(new);
                checkpoint = (end_seg, producer.hasher.clone());
                producer.tags.clear();
                if new == total {
                    progress(Progress::Bytes { done: total, total });
                    if !producer.reader.at_end()? {
                        return Err(TransferError::FileChanged);
                    }
                    return Ok((producer.digest(), stats));
                }
            }
            Ok(_) => {
                return Err(ClientError::Protocol("relay confirmed a wrong offset".into()).into());
            }
            Err(e) if e.code() == Some(ErrorCode::NotFound) => return Err(TransferError::Gone),
            Err(e) if e.code() == Some(ErrorCode::BodyTooLarge) => {
                return Err(TransferError::TooLarge {
                    size: source.size(),
                    max: 0,
                });
            }
            Err(e) if e.is_permanent() => return Err(e.into()),
            Err(_) => {
                resuming = true;
                confirmed = None;
                // Whatever reached the relay is kept there: if its offset
                // moved, this attempt made progress.
                match client.offset(id).await {
                    Ok(o) if o > offset => {
                        failures = 0;
                        delay = policy.delay;
                        confirmed = Some(o);
                    }
                    _ => {
                        failures += 1;
                        if failures >= policy.attempts {
                            return Err(TransferError::Interrupted {
                                done: offset,
                                total,
                            });
                        }
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(policy.max_delay);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use rand_core::OsRng;

    #[test]
    fn a_segment_sealed_again_with_other_content_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![1u8; 300_000]).unwrap();
        let source = Source::file(&path).unwrap();
        let layout = Layout::new(300_000).unwrap();
        let key = KeyBytes::random(&mut OsRng);
        let mut p = Producer {
            reader: source.open().unwrap(),
            cipher: SegmentCipher::new(&key, layout),
            hasher: Sha256::new(),
            next: 0,
            tags: std::collections::HashMap::new(),
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        p.produce_part(3, 0, &tx).unwrap();
        let first: Vec<Vec<u8>> = (0..3).map(|_| rx.try_recv().unwrap().unwrap()).collect();

        // The same content sealed again (a resume) is byte-identical.
        p.position(&(0, Sha256::new()), 0).unwrap();
        p.produce_part(3, 0, &tx).unwrap();
        for s in &first {
            assert_eq!(&rx.try_recv().unwrap().unwrap(), s);
        }

        // Segment 1 changes, size and modification time kept: refused
        // before its new ciphertext is sent.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[70_000] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        p.reader.unchanged().unwrap();
        p.position(&(0, Sha256::new()), 0).unwrap();
        let r = p.produce_part(3, 0, &tx);
        assert!(matches!(r, Err(TransferError::FileChanged)), "{r:?}");
        assert_eq!(&rx.try_recv().unwrap().unwrap(), &first[0]);
        assert!(matches!(rx.try_recv(), Ok(Err(_))), "the part must fail");
        assert!(
            rx.try_recv().is_err(),
            "nothing sealed from the new content"
        );
    }
}
