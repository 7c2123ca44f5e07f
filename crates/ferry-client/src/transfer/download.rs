//! Downloading: ranged GETs, each segment opened before its plaintext is
//! written, resumed from the partial file.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_core::attachment::{AttachmentError, AttachmentRef, Layout, SEGMENT, SegmentCipher};
use ferry_proto::ErrorCode;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::transport::{ClientError, transport_err};

use super::blob_client::BlobClient;
use super::{Progress, RetryPolicy, TransferError, TransferStats, io};

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
    client: &BlobClient,
    attachment: &AttachmentRef,
    dest: &Path,
    policy: RetryPolicy,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<TransferStats, TransferError> {
    if dest.exists() {
        return Err(TransferError::Exists);
    }
    let layout = attachment.layout()?;
    let part = part_path(dest, attachment);
    let result = download_into(client, attachment, layout, &part, policy, progress).await;
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
    // Decrypted bytes: readable by this user only, from the first byte.
    let mut file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(part)
            .map_err(io)?
    };
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
