//! What `send-file`, `send-voice` and `save` need around the client: file
//! sources, voice encoding, and progress (a bar on a terminal, events with
//! `--json`).

use std::io::{IsTerminal as _, Read as _};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::AttachmentKind;
use ferry_client::FileMeta;
use ferry_client::transfer::{Patch, Progress, Source};
use ferry_media::strip::{self, Media};
use zeroize::Zeroizing;

use crate::output::Output;
use crate::user::Failure;

/// Largest Ogg/Opus file sent as a voice message as is.
const MAX_OGG: u64 = 64 * 1024 * 1024;

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "file".to_owned())
}

fn mime_of(path: &Path) -> Option<String> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(
        match ext.as_str() {
            "jpg" | "jpeg" => "image/jpeg",
            "png" => "image/png",
            "gif" => "image/gif",
            "webp" => "image/webp",
            "heic" => "image/heic",
            "mp4" => "video/mp4",
            "mov" => "video/quicktime",
            "webm" => "video/webm",
            "ogg" | "opus" => "audio/ogg",
            "wav" => "audio/wav",
            "mp3" => "audio/mpeg",
            "m4a" => "audio/mp4",
            "pdf" => "application/pdf",
            "txt" => "text/plain",
            _ => return None,
        }
        .to_owned(),
    )
}

fn io_failure(e: &std::io::Error) -> Failure {
    Failure {
        code: "io",
        message: format!("cannot read the file: {}", e.kind()),
    }
}

/// Largest photo cleaned of its metadata (in memory).
const MAX_PHOTO: u64 = 64 * 1024 * 1024;

fn metadata_failure(what: &str) -> Failure {
    Failure {
        code: "metadata",
        message: format!(
            "Ferry cannot remove the location and other details from this {what}; \
             convert it to JPEG, PNG or MP4, or send it as it is with --keep-metadata"
        ),
    }
}

/// A file to send. A photo or video loses its metadata (location, dates,
/// camera) and gets a generic name, unless `keep_metadata`; one whose
/// metadata cannot be removed is refused.
pub(crate) fn file_source(path: &Path, keep_metadata: bool) -> Result<(Source, FileMeta), Failure> {
    let source = |s: Result<Source, _>| {
        s.map_err(|e| Failure {
            code: "io",
            message: format!("cannot send that path: {e}"),
        })
    };
    let meta = |name: String, mime: Option<String>| FileMeta {
        name,
        mime,
        kind: AttachmentKind::File,
        duration_ms: None,
    };
    let as_is = || -> Result<(Source, FileMeta), Failure> {
        Ok((
            source(Source::file(path))?,
            meta(name_of(path), mime_of(path)),
        ))
    };
    if keep_metadata {
        return as_is();
    }
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| io_failure(&e))?;
    let Some(kind) = strip::sniff(&head[..n]) else {
        return as_is();
    };
    let photo = |clean: fn(&[u8]) -> Result<Vec<u8>, strip::StripError>, name: &str, mime: &str| {
        let size = std::fs::metadata(path).map_err(|e| io_failure(&e))?.len();
        if size > MAX_PHOTO {
            return Err(metadata_failure("large picture"));
        }
        let all = Zeroizing::new(std::fs::read(path).map_err(|e| io_failure(&e))?);
        let cleaned = clean(&all).map_err(|e| Failure {
            code: "metadata",
            message: format!("cannot remove the picture's metadata: {e}"),
        })?;
        Ok((
            Source::Memory(Arc::new(Zeroizing::new(cleaned))),
            meta(name.to_owned(), Some(mime.to_owned())),
        ))
    };
    match kind {
        Media::Jpeg => photo(strip::strip_jpeg, "photo.jpg", "image/jpeg"),
        Media::Png => photo(strip::strip_png, "image.png", "image/png"),
        Media::Webp => photo(strip::strip_webp, "image.webp", "image/webp"),
        Media::Video => {
            // Size and time first: a file changed while it is read for
            // its metadata is refused when sent.
            let src = source(Source::file(path))?;
            let size = src.size();
            let mut f = std::fs::File::open(path).map_err(|e| io_failure(&e))?;
            let patches = strip::video_patches(&mut f, size)
                .map_err(|e| Failure {
                    code: "metadata",
                    message: format!("cannot remove the video's metadata: {e}"),
                })?
                .into_iter()
                .map(|p| Patch {
                    at: p.at,
                    len: p.len,
                    bytes: p.bytes,
                })
                .collect();
            let mov = mime_of(path).as_deref() == Some("video/quicktime");
            let (name, mime) = if mov {
                ("video.mov", "video/quicktime")
            } else {
                ("video.mp4", "video/mp4")
            };
            Ok((
                source(src.with_patches(patches))?,
                meta(name.to_owned(), Some(mime.to_owned())),
            ))
        }
        Media::Unsupported(what) => Err(metadata_failure(what)),
        _ => Err(metadata_failure("file")),
    }
}

/// A voice message: Ogg/Opus as is, WAV encoded to Opus in memory (the
/// recording never goes to a temporary file).
pub(crate) fn voice_source(path: &Path) -> Result<(Source, FileMeta), Failure> {
    let mut f = std::fs::File::open(path).map_err(|e| io_failure(&e))?;
    let mut head = [0u8; 64];
    let n = f.read(&mut head).map_err(|e| io_failure(&e))?;
    let stem = path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "voice".to_owned());
    let voice = |e: ferry_media::VoiceError| Failure {
        code: "not_voice",
        message: e.to_string(),
    };
    if ferry_media::is_ogg_opus(&head[..n]) {
        let size = f.metadata().map_err(|e| io_failure(&e))?.len();
        if size > MAX_OGG {
            return Err(Failure {
                code: "voice_too_long",
                message: "that recording is too large for a voice message; send it with send-file"
                    .into(),
            });
        }
        let mut all = Zeroizing::new(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut all))
            .map_err(|e| io_failure(&e))?;
        let duration_ms = ferry_media::ogg_opus_duration_ms(&all);
        return Ok((
            Source::Memory(Arc::new(all)),
            FileMeta {
                name: format!("{stem}.ogg"),
                mime: Some("audio/ogg".into()),
                kind: AttachmentKind::Voice,
                duration_ms,
            },
        ));
    }
    let f = std::fs::File::open(path).map_err(|e| io_failure(&e))?;
    let mut note = ferry_media::wav_to_ogg_opus(std::io::BufReader::new(f)).map_err(voice)?;
    let duration_ms = Some(note.duration_ms);
    Ok((
        // Moved, not copied: the only copy is wiped when the send ends.
        Source::Memory(Arc::new(Zeroizing::new(std::mem::take(&mut note.ogg)))),
        FileMeta {
            name: format!("{stem}.ogg"),
            mime: Some("audio/ogg".into()),
            kind: AttachmentKind::Voice,
            duration_ms,
        },
    ))
}

/// Shows transfer progress: a bar on a terminal, throttled JSON events with
/// `--json`, nothing otherwise.
pub(crate) struct ProgressView {
    out: Output,
    phase: &'static str,
    bar: Option<indicatif::ProgressBar>,
    last: Option<Instant>,
}

impl ProgressView {
    pub(crate) fn new(out: Output, phase: &'static str) -> Self {
        let bar = (!out.json && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(phase);
            b
        });
        Self {
            out,
            phase,
            bar,
            last: None,
        }
    }

    pub(crate) fn on(&mut self, p: Progress) {
        match p {
            Progress::Bytes { done, total } => {
                if let Some(b) = &self.bar {
                    b.set_length(total);
                    b.set_position(done);
                }
                let due = self
                    .last
                    .is_none_or(|t| t.elapsed() >= Duration::from_millis(250));
                if self.out.json && (due || done == total) {
                    self.last = Some(Instant::now());
                    self.out.print(&crate::output::Line::Progress {
                        phase: self.phase,
                        done,
                        total,
                    });
                }
            }
            Progress::Resumed { offset } => {
                if let Some(b) = &self.bar {
                    b.println(format!("connection lost; resuming at byte {offset}"));
                }
                if self.out.json {
                    self.out.print(&crate::output::Line::Resumed {
                        phase: self.phase,
                        offset,
                    });
                }
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.abandon();
        }
    }
}
