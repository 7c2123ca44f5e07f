//! Attachment transfers: a tus 1.0 client for the relay's blob store, and
//! the upload and download drivers that stream a file through
//! [`ferry_core::attachment`] in constant memory and resume after any
//! interruption.
//!
//! Upload: one `PATCH` per part of [`PART_SEGMENTS`] sealed segments, so at
//! most one part is ever unconfirmed; after a failure the driver asks the
//! relay for its offset (`HEAD`) and goes on from there, re-sealing only
//! the segment that holds it. Sealing is deterministic for a given key and
//! position, so re-sealed bytes equal the bytes the relay already has.
//!
//! Download: a ranged `GET` from the first segment not yet written; each
//! segment is authenticated before its plaintext touches the disk, the
//! plaintext goes to `PATH.<id>.ferry-part`, and only a file whose digest
//! matches is moved to `PATH` (never replacing an existing file). A
//! failure that is not an interruption removes the partial file.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use ferry_core::KeyBytes;
use ferry_core::attachment::{AttachmentError, AttachmentRef, Layout, SEGMENT, SegmentCipher};
use ferry_proto::MailboxKey;
use ferry_proto::auth::{HEADER_ACCESS_TOKEN, HEADER_BLOB_TOKEN, HEADER_MAILBOX};
use ferry_proto::{ErrorCode, MailboxId, b64};
use reqwest::{Method, StatusCode};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::transport::{ClientError, Transport, refusal, transport_err};

/// Sealed segments per upload `PATCH`: the most an interruption can make
/// the client send twice (about 4 MiB).
pub const PART_SEGMENTS: u64 = 64;
const TUS: &str = "1.0.0";

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The relay refused or could not be reached.
    #[error(transparent)]
    Relay(#[from] ClientError),
    /// The blob is not (or no longer) on the relay.
    #[error("the attachment is no longer on the relay (blobs expire after 48 hours by default)")]
    Gone,
    /// The file is larger than the relay accepts.
    #[error("file is {size} bytes; this relay accepts attachments up to {} bytes", if *max > 0 { max.to_string() } else { "fewer".into() })]
    TooLarge {
        /// File size.
        size: u64,
        /// Largest file the relay takes (0 if it did not say).
        max: u64,
    },
    /// The relay has no room for attachments now.
    #[error("the relay's attachment storage is full; try again later")]
    RelayFull,
    /// The source file changed while it was being sent.
    #[error("the file changed while it was being sent; send it again")]
    FileChanged,
    /// Decryption or digest check failed.
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// The destination exists.
    #[error("the destination already exists; choose another path")]
    Exists,
    /// Reading or writing a local file failed.
    #[error("local file: {0}")]
    Io(String),
    /// The relay stayed unreachable; the transfer can be resumed later.
    #[error(
        "transfer interrupted at {done} of {total} bytes; run the same command again to resume"
    )]
    Interrupted {
        /// Bytes confirmed so far.
        done: u64,
        /// Total bytes.
        total: u64,
    },
}

/// The relay's `Upload-Offset` answer.
fn upload_offset(resp: &reqwest::Response) -> Result<u64, ClientError> {
    resp.headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| ClientError::Protocol("no upload offset".into()))
}

fn io(e: std::io::Error) -> TransferError {
    TransferError::Io(e.kind().to_string())
}

/// What a transfer reports while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Bytes of the blob transferred so far, of `total`.
    Bytes {
        /// Done.
        done: u64,
        /// Total blob bytes.
        total: u64,
    },
    /// The connection broke; resuming from `offset`.
    Resumed {
        /// Where the transfer goes on.
        offset: u64,
    },
}

/// Figures of a finished transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferStats {
    /// Blob size.
    pub blob_len: u64,
    /// Blob bytes put on (or taken off) the wire, counting repeats.
    pub wire_bytes: u64,
    /// How many times the transfer resumed after an interruption.
    pub resumes: u32,
}

/// How long a transfer keeps trying without progress.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Consecutive failed attempts (without any progress) before giving up.
    pub attempts: u32,
    /// First pause; doubles up to `max_delay`.
    pub delay: Duration,
    /// Longest pause.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 12,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(3),
        }
    }
}

/// A tus client for one relay's blob store (over [`crate::transport`]).
#[derive(Clone)]
pub struct BlobClient {
    transport: Arc<Transport>,
}

impl std::fmt::Debug for BlobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobClient(..)")
    }
}

fn blob_path(id: Option<MailboxId>) -> String {
    match id {
        Some(id) => format!("/v1/blobs/{}", id.to_b64()),
        None => "/v1/blobs".to_owned(),
    }
}

impl BlobClient {
    /// A client for the relay at `base`.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Ok(Self::over(Arc::new(Transport::new(base)?)))
    }

    /// A client over an existing transport (sharing its learned clock and,
    /// for the profile's own relay, its access token).
    pub fn over(transport: Arc<Transport>) -> Self {
        Self { transport }
    }

    /// Sends the operator's access token when creating blobs.
    pub fn with_access_token(self, token: Option<String>) -> Self {
        let t = Arc::try_unwrap(self.transport).unwrap_or_else(|shared| shared.duplicate());
        Self::over(Arc::new(t.with_access_token(token)))
    }

    /// The largest blob the relay accepts (`Tus-Max-Size`), if it says.
    pub async fn max_size(&self) -> Result<Option<u64>, ClientError> {
        let resp = self
            .transport
            .send(self.transport.request(Method::OPTIONS, &blob_path(None)))
            .await?;
        Ok(resp
            .headers()
            .get("tus-max-size")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Creates an upload of `length` bytes; returns its id and read token.
    /// `signer` (a mailbox on this relay and its sender key) lets a private
    /// relay accept it without the operator's token.
    pub async fn create(
        &self,
        length: u64,
        signer: Option<(MailboxId, &MailboxKey)>,
    ) -> Result<(MailboxId, KeyBytes), ClientError> {
        let token = self.transport.access_token();
        let headers = |req: reqwest::RequestBuilder| {
            let req = req
                .header("tus-resumable", TUS)
                .header("upload-length", length);
            let req = match token {
                Some(t) => req.header(HEADER_ACCESS_TOKEN, t),
                None => req,
            };
            match signer {
                Some((mailbox, _)) => req.header(HEADER_MAILBOX, mailbox.to_b64()),
                None => req,
            }
        };
        let resp = match signer {
            Some((_, key)) => {
                self.transport
                    .send_signed(Method::POST, "/v1/blobs", &[key], Vec::new(), headers)
                    .await?
            }
            None => {
                self.transport
                    .send(headers(self.transport.request(Method::POST, "/v1/blobs")))
                    .await?
            }
        };
        if resp.status() != StatusCode::CREATED {
            return Err(refusal(resp).await);
        }
        let h = resp.headers();
        let id = h
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .and_then(|s| s.parse::<MailboxId>().ok())
            .ok_or_else(|| ClientError::Protocol("no blob location".into()))?;
        let token = h
            .get(HEADER_BLOB_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(|t| Zeroizing::new(t.to_owned()))
            .and_then(|t| b64::decode_array::<32>(&t).ok())
            .map(KeyBytes::from_bytes)
            .ok_or_else(|| ClientError::Protocol("no blob token".into()))?;
        Ok((id, token))
    }

    /// The relay's confirmed offset of an upload.
    pub async fn offset(&self, id: MailboxId) -> Result<u64, ClientError> {
        let req = self
            .transport
            .request(Method::HEAD, &blob_path(Some(id)))
            .header("tus-resumable", TUS);
        let resp = self.transport.send(req).await?;
        upload_offset(&resp)
    }

    /// Appends `len` bytes of `body` at `offset`; returns the new offset.
    async fn patch(
        &self,
        id: MailboxId,
        offset: u64,
        len: u64,
        body: reqwest::Body,
    ) -> Result<u64, ClientError> {
        let req = self
            .transport
            .request(Method::PATCH, &blob_path(Some(id)))
            .header("tus-resumable", TUS)
            .header("upload-offset", offset)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/offset+octet-stream",
            )
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        let resp = self.transport.send(req).await?;
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(refusal(resp).await);
        }
        upload_offset(&resp)
    }

    /// Starts a download of the blob from `from`.
    async fn get(
        &self,
        id: MailboxId,
        token: &KeyBytes,
        from: u64,
    ) -> Result<reqwest::Response, ClientError> {
        let token = Zeroizing::new(b64::encode(token.expose()));
        let mut req = self
            .transport
            .request(Method::GET, &blob_path(Some(id)))
            .header(HEADER_BLOB_TOKEN, token.as_str());
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let resp = self.transport.send(req).await?;
        let ok = if from > 0 {
            resp.status() == StatusCode::PARTIAL_CONTENT
        } else {
            resp.status() == StatusCode::OK
        };
        if !ok {
            return Err(refusal(resp).await);
        }
        Ok(resp)
    }

    /// Deletes the blob (termination). Unknown blobs are not an error.
    pub async fn delete(&self, id: MailboxId) -> Result<(), ClientError> {
        let req = self
            .transport
            .request(Method::DELETE, &blob_path(Some(id)))
            .header("tus-resumable", TUS);
        match self.transport.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

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
        })
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
            } => {
                let f = File::open(path).map_err(io)?;
                let r = Reader::File(f, *size, *modified);
                r.unchanged()?;
                Ok(r)
            }
            Self::Memory(b) => Ok(Reader::Memory(b.clone(), 0)),
        }
    }
}

enum Reader {
    /// The file, with the size and modification time it must keep.
    File(File, u64, Option<SystemTime>),
    Memory(Arc<Zeroizing<Vec<u8>>>, usize),
}

impl Reader {
    /// Fails if the file's size or modification time changed.
    fn unchanged(&self) -> Result<(), TransferError> {
        if let Self::File(f, size, modified) = self {
            let meta = f.metadata().map_err(io)?;
            if meta.len() != *size || meta.modified().ok() != *modified {
                return Err(TransferError::FileChanged);
            }
        }
        Ok(())
    }

    fn seek(&mut self, to: u64) -> Result<(), TransferError> {
        match self {
            Self::File(f, ..) => f.seek(SeekFrom::Start(to)).map(|_| ()).map_err(io),
            Self::Memory(b, at) => {
                *at = usize::try_from(to).unwrap_or(usize::MAX).min(b.len());
                Ok(())
            }
        }
    }

    /// Fills `buf` completely; a short read means the file shrank.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), TransferError> {
        match self {
            Self::File(f, ..) => f.read_exact(buf).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    TransferError::FileChanged
                } else {
                    io(e)
                }
            }),
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

/// The partial file a download of `attachment` to `dest` writes into.
pub fn part_path(dest: &Path, attachment: &AttachmentRef) -> PathBuf {
    let tag: String = Sha256::digest(attachment.blob.to_b64().as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{tag}.ferry-part"));
    dest.with_file_name(name)
}

/// Downloads and decrypts `attachment` into `dest`, resuming a partial file
/// left by an interrupted run.
pub async fn download(
    attachment: &AttachmentRef,
    dest: &Path,
    policy: RetryPolicy,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<TransferStats, TransferError> {
    if dest.exists() {
        return Err(TransferError::Exists);
    }
    let client = BlobClient::new(&attachment.relay)?;
    let layout = attachment.layout()?;
    let part = part_path(dest, attachment);
    let result = download_into(&client, attachment, layout, &part, policy, progress).await;
    match result {
        Ok(stats) => {
            // Never replace an existing file: link, then drop the part name.
            match std::fs::hard_link(&part, dest) {
                Ok(()) => std::fs::remove_file(&part).map_err(io)?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(TransferError::Exists);
                }
                // No hard links here (FAT, exFAT): claim the name, then
                // move the file over our own placeholder.
                Err(_) => {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(dest)
                        .map_err(|e| {
                            if e.kind() == std::io::ErrorKind::AlreadyExists {
                                TransferError::Exists
                            } else {
                                io(e)
                            }
                        })?;
                    std::fs::rename(&part, dest).map_err(io)?;
                }
            }
            Ok(stats)
        }
        Err(e @ (TransferError::Interrupted { .. } | TransferError::Relay(_))) => Err(e),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

/// Where a download's segments go: a blocking thread that opens each
/// sealed segment and a scoped thread that writes and hashes the plaintext.
struct Sink {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    task: tokio::task::JoinHandle<Result<(File, [u8; 32]), TransferError>>,
}

impl Sink {
    fn start(mut file: File, mut hasher: Sha256, cipher: SegmentCipher, first: u64) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
        let task = tokio::task::spawn_blocking(move || {
            let layout = cipher.layout();
            let fault_after: Option<u64> = std::env::var("FERRY_FAULT_EXIT_AFTER_SEGMENTS")
                .ok()
                .and_then(|v| v.parse().ok());
            let (ptx, prx) = std::sync::mpsc::sync_channel::<(u64, Zeroizing<Vec<u8>>)>(4);
            std::thread::scope(|scope| {
                let writer = scope.spawn(|| -> Result<(), TransferError> {
                    for (written, (i, plain)) in (1u64..).zip(prx) {
                        let real = layout.real_len(i) as usize;
                        file.write_all(&plain[..real]).map_err(io)?;
                        hasher.update(&plain[..real]);
                        if fault_after.is_some_and(|n| written >= n) {
                            // Fault injection for crash tests: die mid-save.
                            std::process::exit(75);
                        }
                    }
                    Ok(())
                });
                let mut opened = Ok(());
                let mut i = first;
                while let Some(mut sealed) = rx.blocking_recv() {
                    if let Err(e) = cipher.open(i, &mut sealed) {
                        opened = Err(TransferError::from(e));
                        break;
                    }
                    if ptx.send((i, Zeroizing::new(sealed))).is_err() {
                        break;
                    }
                    i += 1;
                }
                drop(ptx);
                rx.close();
                let written = writer
                    .join()
                    .unwrap_or_else(|_| Err(TransferError::Io("writing thread failed".into())));
                opened.and(written)
            })?;
            Ok((file, hasher.finalize().into()))
        });
        Self { tx, task }
    }

    /// Hands over the next sealed segment; `false` if the sink stopped
    /// (its error comes from [`Sink::finish`]).
    async fn push(&self, sealed: Vec<u8>) -> bool {
        self.tx.send(sealed).await.is_ok()
    }

    /// Writes out everything handed over; returns the file and the digest.
    async fn finish(self) -> Result<(File, [u8; 32]), TransferError> {
        drop(self.tx);
        self.task
            .await
            .map_err(|_| TransferError::Io("task failed".into()))?
    }
}

async fn download_into(
    client: &BlobClient,
    a: &AttachmentRef,
    layout: Layout,
    part: &Path,
    policy: RetryPolicy,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<TransferStats, TransferError> {
    let total = layout.blob_len();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(part)
        .map_err(io)?;
    // Resume at the first segment not completely written.
    let have = file.metadata().map_err(io)?.len().min(layout.size);
    let mut seg = have / SEGMENT;
    file.set_len(seg * SEGMENT).map_err(io)?;
    let mut hasher = Sha256::new();
    {
        let mut buf = Zeroizing::new(vec![0u8; SEGMENT as usize]);
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        for _ in 0..seg {
            file.read_exact(&mut buf).map_err(io)?;
            hasher.update(&buf[..]);
        }
    }
    let sink = Sink::start(file, hasher, SegmentCipher::new(&a.key, layout), seg);
    let mut stats = TransferStats {
        blob_len: total,
        wire_bytes: 0,
        resumes: 0,
    };
    let mut failures = 0u32;
    let mut delay = policy.delay;
    let mut first = true;
    let mut stopped = false;
    let mut gave_up = None;
    while seg < layout.segments && !stopped {
        let from = layout.blob_offset(seg);
        if !first {
            stats.resumes += 1;
            progress(Progress::Resumed { offset: from });
        }
        first = false;
        let made_progress_from = seg;
        let outcome: Result<(), Step> = async {
            let mut resp = client
                .get(a.blob, &a.token, from)
                .await
                .map_err(Step::Client)?;
            let mut buf: Vec<u8> = Vec::with_capacity((SEGMENT + 16) as usize);
            let mut last_report = std::time::Instant::now();
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| Step::Client(transport_err(e)))?
            {
                stats.wire_bytes += chunk.len() as u64;
                let mut rest = &chunk[..];
                while !rest.is_empty() && seg < layout.segments {
                    let want = (layout.plain_len(seg) + 16) as usize;
                    let take = (want - buf.len()).min(rest.len());
                    buf.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if buf.len() == want {
                        let next = Vec::with_capacity((SEGMENT + 16) as usize);
                        if !sink.push(std::mem::replace(&mut buf, next)).await {
                            return Err(Step::Stopped);
                        }
                        seg += 1;
                    }
                }
                if !rest.is_empty() {
                    return Err(Step::Tampered(AttachmentError::Tampered(seg)));
                }
                if last_report.elapsed() >= Duration::from_millis(200) {
                    last_report = std::time::Instant::now();
                    progress(Progress::Bytes {
                        done: layout.blob_offset(seg) + buf.len() as u64,
                        total,
                    });
                }
            }
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) if seg == layout.segments => break,
            // The body ended early: a broken connection or a truncated blob.
            Ok(()) => {}
            Err(Step::Stopped) => stopped = true,
            Err(Step::Tampered(e)) => {
                let _ = sink.finish().await;
                return Err(e.into());
            }
            Err(Step::Client(e))
                if matches!(
                    e.code(),
                    Some(ErrorCode::NotFound | ErrorCode::UploadIncomplete)
                ) =>
            {
                let _ = sink.finish().await;
                return Err(TransferError::Gone);
            }
            Err(Step::Client(e)) if e.is_permanent() => {
                let _ = sink.finish().await;
                return Err(e.into());
            }
            Err(Step::Client(_)) => {}
        }
        if stopped {
            break;
        }
        if seg > made_progress_from {
            failures = 0;
            delay = policy.delay;
        } else {
            failures += 1;
            if failures >= policy.attempts {
                gave_up = Some(TransferError::Interrupted {
                    done: layout.blob_offset(seg),
                    total,
                });
                break;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(policy.max_delay);
        }
    }
    // Every segment handed over is written (or the sink reports why not).
    let (file, digest) = sink.finish().await?;
    if let Some(e) = gave_up {
        file.sync_all().map_err(io)?;
        return Err(e);
    }
    progress(Progress::Bytes { done: total, total });
    if digest[..] != a.digest[..] {
        return Err(AttachmentError::DigestMismatch.into());
    }
    file.sync_all().map_err(io)?;
    Ok(stats)
}

/// How one download attempt ended early.
enum Step {
    Client(ClientError),
    Tampered(AttachmentError),
    /// The sink stopped (a segment failed to open or a write failed).
    Stopped,
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
