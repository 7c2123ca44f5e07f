//! Removing what a photo or video says about where, when and with what it
//! was taken (EXIF with GPS, XMP, IPTC, comments, QuickTime location and
//! dates, metadata tracks) before it leaves the phone.
//!
//! Images are rewritten in memory without those parts (JPEG segments, PNG
//! and WebP chunks); a JPEG keeps only its orientation, in a minimal EXIF
//! block, so it still shows the right way up. Videos (MP4, MOV and other
//! ISO media files) are never loaded whole: [`video_patches`] reads their box
//! structure and returns same-length overwrites that turn metadata boxes
//! into `free` boxes full of zeros, zero the creation and modification
//! times, and zero the samples of timed-metadata tracks (GPS, timecode), so
//! every offset in the file stays valid. Formats it cannot clean (HEIC,
//! AVIF, GIF, TIFF) are reported as such, never passed through.

mod image;
mod iso;

pub use image::{strip_jpeg, strip_png, strip_webp};
pub use iso::{Patch, video_patches};

/// A kind of picture or video, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Media {
    /// JPEG.
    Jpeg,
    /// PNG.
    Png,
    /// WebP.
    Webp,
    /// An ISO media file: MP4, MOV, M4V, 3GP.
    Video,
    /// A picture or video in a format whose metadata this crate cannot
    /// remove (its name, for the user).
    Unsupported(&'static str),
}

/// Sniffs the first bytes (16 are enough); `None` if it is neither a
/// picture nor a video this crate knows of.
pub fn sniff(head: &[u8]) -> Option<Media> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Media::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Media::Png);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some(Media::Webp);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(Media::Unsupported("GIF"));
    }
    if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        return Some(Media::Unsupported("TIFF or RAW"));
    }
    // QuickTime files may begin with another atom than `ftyp`.
    if head.len() >= 8
        && matches!(
            &head[4..8],
            b"moov" | b"mdat" | b"wide" | b"free" | b"skip" | b"pnot"
        )
    {
        return Some(Media::Video);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return Some(match &head[8..12] {
            b"heic" | b"heix" | b"hevc" | b"heim" | b"heis" | b"mif1" | b"msf1" => {
                Media::Unsupported("HEIC")
            }
            b"avif" | b"avis" => Media::Unsupported("AVIF"),
            _ => Media::Video,
        });
    }
    None
}

/// Why a file could not be cleaned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StripError {
    /// The file is damaged or not what its first bytes say.
    #[error("the file is damaged: {0}")]
    Malformed(&'static str),
    /// Part of the file is too large to clean.
    #[error("a metadata block of {0} bytes is too large to remove")]
    TooLarge(u64),
    /// Reading the file failed.
    #[error("could not read the file: {0}")]
    Io(#[source] std::io::Error),
}

impl From<std::io::Error> for StripError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Self::Malformed("truncated")
        } else {
            Self::Io(e)
        }
    }
}
