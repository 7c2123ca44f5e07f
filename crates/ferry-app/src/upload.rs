//! A file picked in the page, made ready to send: photos are rewritten
//! without their metadata (place, time, camera), videos get their
//! metadata overwritten in place, formats that cannot be cleaned are
//! refused; everything stays in memory.

use std::sync::Arc;

use ferry_client::transfer::Source;
use ferry_client::{AttachmentKind, FileMeta};
use ferry_media::strip::{self, Media};
use zeroize::Zeroizing;

/// Largest file the app takes from the page.
pub(crate) const MAX_UPLOAD: usize = 100 * 1024 * 1024;

/// Why a file cannot be sent as it is (an error code for the page).
pub(crate) type Refusal = &'static str;

/// The file's last path component, without control characters.
fn plain_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last.chars().filter(|c| !c.is_control()).take(120).collect();
    if kept.trim().is_empty() {
        "file".to_owned()
    } else {
        kept
    }
}

/// What to send for `bytes` picked as `name` (type `mime` as the browser
/// guessed it).
pub(crate) fn prepare(
    name: &str,
    mime: Option<&str>,
    bytes: Zeroizing<Vec<u8>>,
) -> Result<(Source, FileMeta), Refusal> {
    let meta = |name: String, mime: Option<String>| FileMeta {
        name,
        mime,
        kind: AttachmentKind::File,
        duration_ms: None,
    };
    let photo = |clean: fn(&[u8]) -> Result<Vec<u8>, strip::StripError>, name: &str, mime: &str| {
        let cleaned = clean(&bytes).map_err(|_| "metadata")?;
        Ok((
            Source::Memory(Arc::new(Zeroizing::new(cleaned))),
            meta(name.to_owned(), Some(mime.to_owned())),
        ))
    };
    match strip::sniff(&bytes) {
        Some(Media::Jpeg) => photo(strip::strip_jpeg, "photo.jpg", "image/jpeg"),
        Some(Media::Png) => photo(strip::strip_png, "image.png", "image/png"),
        Some(Media::Webp) => photo(strip::strip_webp, "image.webp", "image/webp"),
        Some(Media::Video) => {
            let size = bytes.len() as u64;
            let patches = strip::video_patches(&mut std::io::Cursor::new(&bytes[..]), size)
                .map_err(|_| "metadata")?;
            let mut clean = bytes;
            for p in patches {
                let at = usize::try_from(p.at).map_err(|_| "metadata")?;
                let len = usize::try_from(p.len).map_err(|_| "metadata")?;
                let dest = clean
                    .get_mut(at..at.saturating_add(len))
                    .ok_or("metadata")?;
                match &p.bytes {
                    Some(b) if b.len() == len => dest.copy_from_slice(b),
                    Some(_) => return Err("metadata"),
                    None => dest.fill(0),
                }
            }
            let mov = mime == Some("video/quicktime");
            let (name, mime) = if mov {
                ("video.mov", "video/quicktime")
            } else {
                ("video.mp4", "video/mp4")
            };
            Ok((
                Source::Memory(Arc::new(clean)),
                meta(name.to_owned(), Some(mime.to_owned())),
            ))
        }
        Some(Media::Unsupported(_)) => Err("metadata"),
        Some(_) => Err("metadata"),
        None => Ok((
            Source::Memory(Arc::new(bytes)),
            meta(plain_name(name), mime.map(str::to_owned)),
        )),
    }
}

/// The media type to serve a decrypted attachment with: only raster
/// pictures, audio and video play inline; everything else (SVG and HTML
/// included, which could run script) is plain bytes.
pub(crate) fn inline_type(mime: Option<&str>) -> Option<&'static str> {
    Some(match mime? {
        "image/jpeg" => "image/jpeg",
        "image/png" => "image/png",
        "image/webp" => "image/webp",
        "image/gif" => "image/gif",
        "video/mp4" => "video/mp4",
        "video/webm" => "video/webm",
        "video/quicktime" => "video/quicktime",
        "audio/ogg" => "audio/ogg",
        "audio/webm" => "audio/webm",
        "audio/mpeg" => "audio/mpeg",
        "audio/wav" | "audio/x-wav" => "audio/wav",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_folders_and_control_characters() {
        assert_eq!(plain_name("/home/me/secret/plan.pdf"), "plan.pdf");
        assert_eq!(plain_name("C:\\x\\a\nb.txt"), "ab.txt");
        assert_eq!(plain_name(""), "file");
    }

    #[test]
    fn only_safe_types_play_inline() {
        assert_eq!(inline_type(Some("image/png")), Some("image/png"));
        assert_eq!(inline_type(Some("image/svg+xml")), None);
        assert_eq!(inline_type(Some("text/html")), None);
        assert_eq!(inline_type(None), None);
    }

    #[test]
    fn pictures_that_cannot_be_cleaned_are_refused() {
        // A HEIC header: refused, never sent with its metadata.
        let mut heic = vec![0, 0, 0, 24];
        heic.extend_from_slice(b"ftypheic");
        heic.extend_from_slice(&[0; 32]);
        assert_eq!(
            prepare("x.heic", None, Zeroizing::new(heic)).err(),
            Some("metadata")
        );
    }
}
