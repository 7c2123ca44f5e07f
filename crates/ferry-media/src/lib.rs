//! Ferry's media: turns a WAV recording into an Ogg Opus voice note (RFC
//! 7845) in memory, ready to be sent as an attachment, reads the two facts
//! the client shows about a received one (is it Ogg Opus, how long), and
//! removes the metadata of photos and videos before they are sent
//! ([`strip`]).
//!
//! Encoding goes through the reference libopus 1.3.1 translated to Rust
//! (`unsafe-libopus`, wrapped safely in `codec`), so no C library or cmake
//! is needed to build it; Ogg muxing and WAV parsing are pure Rust. Nothing here
//! touches the network, the disk or the clock: callers hand in a reader and
//! get bytes back.
//!
//! It must never panic on a file it is given, never hold a whole
//! decoded recording in memory (a long WAV is refused from its header, and
//! samples stream through the encoder), and never print audio bytes in
//! `Debug` output or errors.

use std::fmt;

mod codec;
mod ogg_opus;
mod resample;
pub mod strip;
mod wav;

pub use ogg_opus::{is_ogg_opus, ogg_opus_duration_ms};
pub use wav::wav_to_ogg_opus;

/// The longest voice note accepted: 30 minutes.
pub const MAX_VOICE_SECS: u64 = 30 * 60;

/// Why a recording could not become a voice note.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VoiceError {
    /// The input is neither a WAV file nor Ogg Opus.
    #[error("not a WAV or Ogg/Opus file; record the voice note again or pick an audio file")]
    NotAudio,
    /// A WAV file in a form this crate does not encode (the detail says
    /// which: channel count, sample rate or sample format).
    #[error("unsupported recording: {0}; save it as 16-bit mono or stereo WAV")]
    Unsupported(String),
    /// The recording is longer than [`MAX_VOICE_SECS`].
    #[error("the recording lasts {secs} s, voice notes are limited to {max} s; send it as a file")]
    TooLong {
        /// Length of the recording in seconds, rounded up.
        secs: u64,
        /// The limit, [`MAX_VOICE_SECS`].
        max: u64,
    },
    /// libopus or the Ogg muxer failed (not expected for valid input).
    #[error("could not encode the voice note: {0}")]
    Encode(String),
    /// The WAV file is damaged: truncated or with an inconsistent header.
    #[error("the recording is damaged: {0}")]
    Malformed(String),
    /// Reading the recording failed.
    #[error("could not read the recording: {0}")]
    Io(#[source] std::io::Error),
}

/// An encoded voice note: an Ogg Opus file and what to show about it.
pub struct VoiceNote {
    /// The complete Ogg Opus file.
    pub ogg: Vec<u8>,
    /// Playable length in milliseconds.
    pub duration_ms: u64,
    /// 1 (mono) or 2 (stereo).
    pub channels: u8,
}

/// Shows the length and channel count, never the audio.
impl fmt::Debug for VoiceNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VoiceNote")
            .field("duration_ms", &self.duration_ms)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_audio() {
        let note = VoiceNote {
            ogg: b"OggS secret audio".to_vec(),
            duration_ms: 1500,
            channels: 1,
        };
        assert_eq!(
            format!("{note:?}"),
            "VoiceNote { duration_ms: 1500, channels: 1, .. }"
        );
    }

    #[test]
    fn errors_say_what_to_do() {
        let err = VoiceError::TooLong {
            secs: 7200,
            max: MAX_VOICE_SECS,
        };
        assert_eq!(
            err.to_string(),
            "the recording lasts 7200 s, voice notes are limited to 1800 s; send it as a file"
        );
    }
}
