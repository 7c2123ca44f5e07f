//! A safe wrapper around the Opus codec.
//!
//! The codec is `unsafe-libopus`: the reference libopus 1.3.1 translated
//! to Rust, so building Ferry needs neither a system libopus nor cmake, and
//! what it encodes is what the reference encoder would encode. This module
//! is the only place in Ferry with `unsafe`; every call checks its
//! arguments first so that the codec only ever sees valid buffers.

#![allow(unsafe_code)]

use std::ptr::NonNull;

use unsafe_libopus as unsafe_ffi;

/// An Opus error, by libopus's name for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Opus: {0}")]
pub(crate) struct CodecError(&'static str);

fn check(code: i32) -> Result<i32, CodecError> {
    if code >= 0 {
        return Ok(code);
    }
    Err(CodecError(match code {
        unsafe_ffi::OPUS_BAD_ARG => "bad argument",
        unsafe_ffi::OPUS_BUFFER_TOO_SMALL => "buffer too small",
        unsafe_ffi::OPUS_INTERNAL_ERROR => "internal error",
        unsafe_ffi::OPUS_INVALID_PACKET => "invalid packet",
        unsafe_ffi::OPUS_UNIMPLEMENTED => "unimplemented",
        unsafe_ffi::OPUS_INVALID_STATE => "invalid state",
        unsafe_ffi::OPUS_ALLOC_FAIL => "allocation failed",
        _ => "unknown error",
    }))
}

/// Sample rates Opus works at.
fn valid_rate(rate: u32) -> Result<i32, CodecError> {
    match rate {
        8_000 | 12_000 | 16_000 | 24_000 | 48_000 => Ok(rate as i32),
        _ => Err(CodecError("unsupported sample rate")),
    }
}

fn valid_channels(channels: u8) -> Result<usize, CodecError> {
    match channels {
        1 | 2 => Ok(usize::from(channels)),
        _ => Err(CodecError("unsupported channel count")),
    }
}

/// A libopus encoder for speech (`OPUS_APPLICATION_VOIP`).
pub(crate) struct Encoder {
    state: NonNull<unsafe_ffi::OpusEncoder>,
    channels: usize,
}

// SAFETY: the encoder state is plain heap memory owned by this value alone;
// libopus keeps no thread-local or global state for it.
unsafe impl Send for Encoder {}

impl Encoder {
    pub(crate) fn voip(rate: u32, channels: u8) -> Result<Self, CodecError> {
        let fs = valid_rate(rate)?;
        let n = valid_channels(channels)?;
        let mut error = 0;
        // SAFETY: rate and channels were checked; `error` outlives the call.
        let state = unsafe {
            unsafe_ffi::opus_encoder_create(
                fs,
                n as i32,
                unsafe_ffi::OPUS_APPLICATION_VOIP,
                &mut error,
            )
        };
        check(error)?;
        let state = NonNull::new(state).ok_or(CodecError("allocation failed"))?;
        Ok(Self { state, channels: n })
    }

    pub(crate) fn set_bitrate(&mut self, bits_per_second: i32) -> Result<(), CodecError> {
        // SAFETY: `state` is a live encoder; the request takes one i32.
        let code = unsafe {
            unsafe_ffi::opus_encoder_ctl!(
                self.state.as_ptr(),
                unsafe_ffi::OPUS_SET_BITRATE_REQUEST,
                bits_per_second
            )
        };
        check(code).map(drop)
    }

    /// The encoder's delay in samples per channel at its own rate.
    pub(crate) fn lookahead(&mut self) -> Result<i32, CodecError> {
        let mut value = 0i32;
        // SAFETY: `state` is a live encoder; the request writes one i32
        // through the reference, which outlives the call.
        let code = unsafe {
            unsafe_ffi::opus_encoder_ctl!(
                self.state.as_ptr(),
                unsafe_ffi::OPUS_GET_LOOKAHEAD_REQUEST,
                &mut value
            )
        };
        check(code)?;
        Ok(value)
    }

    /// Encodes one frame of interleaved samples into `out`; returns the
    /// packet's length.
    pub(crate) fn encode_float(
        &mut self,
        pcm: &[f32],
        out: &mut [u8],
    ) -> Result<usize, CodecError> {
        if pcm.is_empty() || !pcm.len().is_multiple_of(self.channels) {
            return Err(CodecError("bad argument"));
        }
        let frame =
            i32::try_from(pcm.len() / self.channels).map_err(|_| CodecError("bad argument"))?;
        let capacity = i32::try_from(out.len()).unwrap_or(i32::MAX);
        // SAFETY: `pcm` holds `frame` samples for each channel and `out`
        // has `capacity` writable bytes; libopus validates the frame size
        // and never writes past `capacity`.
        let len = unsafe {
            unsafe_ffi::opus_encode_float(
                self.state.as_ptr(),
                pcm.as_ptr(),
                frame,
                out.as_mut_ptr(),
                capacity,
            )
        };
        Ok(check(len)? as usize)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `state` came from opus_encoder_create and is freed once.
        unsafe { unsafe_ffi::opus_encoder_destroy(self.state.as_ptr()) }
    }
}

/// A libopus decoder, used to check what the encoder makes.
#[cfg(test)]
pub(crate) struct Decoder {
    state: NonNull<unsafe_ffi::OpusDecoder>,
    channels: usize,
}

#[cfg(test)]
impl Decoder {
    pub(crate) fn new(rate: u32, channels: u8) -> Result<Self, CodecError> {
        let fs = valid_rate(rate)?;
        let n = valid_channels(channels)?;
        let mut error = 0;
        // SAFETY: rate and channels were checked; `error` outlives the call.
        let state = unsafe { unsafe_ffi::opus_decoder_create(fs, n as i32, &mut error) };
        check(error)?;
        let state = NonNull::new(state).ok_or(CodecError("allocation failed"))?;
        Ok(Self { state, channels: n })
    }

    /// Decodes one packet into interleaved samples; returns the samples per
    /// channel written.
    pub(crate) fn decode(&mut self, packet: &[u8], pcm: &mut [i16]) -> Result<usize, CodecError> {
        let len = i32::try_from(packet.len()).map_err(|_| CodecError("invalid packet"))?;
        let frame = i32::try_from(pcm.len() / self.channels).unwrap_or(i32::MAX);
        // SAFETY: `packet` holds `len` bytes; `pcm` has room for `frame`
        // samples per channel, and libopus writes no more than that.
        let n = unsafe {
            unsafe_ffi::opus_decode(
                self.state.as_ptr(),
                packet.as_ptr(),
                len,
                pcm.as_mut_ptr(),
                frame,
                0,
            )
        };
        Ok(check(n)? as usize)
    }
}

#[cfg(test)]
impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: `state` came from opus_decoder_create and is freed once.
        unsafe { unsafe_ffi::opus_decoder_destroy(self.state.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_errors_not_crashes() {
        assert!(Encoder::voip(44_100, 1).is_err());
        assert!(Encoder::voip(48_000, 3).is_err());
        let mut enc = Encoder::voip(48_000, 2).unwrap();
        let mut out = [0u8; 4000];
        // odd sample count for stereo, and a frame size Opus does not take
        assert!(enc.encode_float(&[0.0; 3], &mut out).is_err());
        assert!(enc.encode_float(&[0.0; 2 * 100], &mut out).is_err());
        assert!(enc.set_bitrate(-5).is_err());
        let mut dec = Decoder::new(48_000, 2).unwrap();
        let mut pcm = [0i16; 2 * 960];
        // a lone TOC byte claiming a code-3 packet with no frame count
        assert!(dec.decode(&[0x03], &mut pcm).is_err());
    }

    #[test]
    fn a_frame_round_trips() {
        let mut enc = Encoder::voip(16_000, 1).unwrap();
        enc.set_bitrate(32_000).unwrap();
        assert!(enc.lookahead().unwrap() > 0);
        let pcm: Vec<f32> = (0..320).map(|i| (i as f32 * 0.1).sin() * 0.5).collect();
        let mut out = [0u8; 4000];
        let len = enc.encode_float(&pcm, &mut out).unwrap();
        assert!(len > 0 && len < 4000);
        let mut dec = Decoder::new(16_000, 1).unwrap();
        let mut back = [0i16; 320];
        assert_eq!(dec.decode(&out[..len], &mut back).unwrap(), 320);
    }
}
