//! WAV recordings in, Ogg Opus voice notes out.

use std::cell::Cell;
use std::io::{self, BufReader, Cursor, Read};

use hound::{SampleFormat, WavReader};

use crate::ogg_opus::{GRANULE_RATE, OggOpusEncoder};
use crate::resample::{Frame, LinearResampler};
use crate::{MAX_VOICE_SECS, VoiceError, VoiceNote};

/// Lowest and highest WAV sample rates accepted. Below 8 kHz is not speech
/// any more; above 192 kHz is not a microphone recording.
const MIN_RATE: u32 = 8_000;
const MAX_RATE: u32 = 192_000;

/// Encodes a WAV recording as an Ogg Opus voice note, in memory.
///
/// Accepts PCM with 8, 16, 24 or 32-bit integer or 32-bit float samples,
/// mono or stereo. Recordings at 8, 12, 16, 24 or 48 kHz are encoded as
/// they are; any other rate (44.1, 22.05, 32 kHz ...) is first resampled to
/// 48 kHz by linear interpolation, which is plenty for speech. The encoder
/// is tuned for voice: 20 ms packets, about 32 kbit/s mono or 48 kbit/s
/// stereo.
///
/// The length is checked against [`MAX_VOICE_SECS`] from the WAV header
/// before any audio is read, and samples are streamed through the encoder,
/// so memory grows with the encoded output, not with the WAV.
///
/// Callers that may be handed a file that is already Ogg Opus should check
/// [`is_ogg_opus`](crate::is_ogg_opus) first: this function only reads WAV
/// and answers [`VoiceError::NotAudio`] for anything else.
pub fn wav_to_ogg_opus(wav: impl Read) -> Result<VoiceNote, VoiceError> {
    let mut input = BufReader::new(wav);
    let mut magic = [0u8; 12];
    read_magic(&mut input, &mut magic)?;
    if !magic.starts_with(b"RIFF") || !magic.ends_with(b"WAVE") {
        return Err(VoiceError::NotAudio);
    }
    let eof = Cell::new(false);
    let input = EofFlag {
        inner: Cursor::new(magic).chain(input),
        eof: &eof,
    };
    let mut reader = WavReader::new(input).map_err(|err| wav_error(err, &eof))?;
    let spec = reader.spec();

    let channels = match spec.channels {
        1 => 1u8,
        2 => 2u8,
        n => {
            return Err(VoiceError::Unsupported(format!(
                "{n} audio channels (only mono or stereo)"
            )));
        }
    };
    let rate = spec.sample_rate;
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(VoiceError::Unsupported(format!(
            "a sample rate of {rate} Hz (only {MIN_RATE} to {MAX_RATE} Hz)"
        )));
    }
    let frames = u64::from(reader.duration());
    let max_frames = MAX_VOICE_SECS * u64::from(rate);
    if frames > max_frames {
        return Err(VoiceError::TooLong {
            secs: frames.div_ceil(u64::from(rate)),
            max: MAX_VOICE_SECS,
        });
    }
    if frames == 0 {
        return Err(VoiceError::Malformed("the recording is empty".to_owned()));
    }

    // Integer samples are scaled to [-1, 1) by their bit depth.
    let int_scale = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => Some(1.0 / (1u64 << (bits - 1)) as f32),
        (SampleFormat::Float, 32) => None,
        (format, bits) => {
            let kind = match format {
                SampleFormat::Int => "integer",
                SampleFormat::Float => "float",
            };
            return Err(VoiceError::Unsupported(format!(
                "{bits}-bit {kind} samples"
            )));
        }
    };

    let encode_rate = if matches!(rate, 8_000 | 12_000 | 16_000 | 24_000 | 48_000) {
        rate
    } else {
        GRANULE_RATE
    };
    let encoder = OggOpusEncoder::new(encode_rate, channels, rate)?;
    let mut sink = Sink::new(encoder, rate, encode_rate);
    let width = usize::from(channels);
    match int_scale {
        Some(scale) => {
            let to_f32 = |s: i32| s as f32 * scale;
            for_each_frame(&mut reader, width, to_f32, &mut sink, &eof)?;
        }
        None => for_each_frame(&mut reader, width, |s: f32| s, &mut sink, &eof)?,
    }
    let ogg = sink.finish()?;
    Ok(VoiceNote {
        ogg,
        duration_ms: frames * 1000 / u64::from(rate),
        channels,
    })
}

/// Reads the 12-byte RIFF/WAVE preamble; a shorter input is not audio.
fn read_magic(input: &mut impl Read, magic: &mut [u8; 12]) -> Result<(), VoiceError> {
    match input.read_exact(magic) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Err(VoiceError::NotAudio),
        Err(err) => Err(VoiceError::Io(err)),
    }
}

/// Reads interleaved samples one at a time and hands whole frames on.
fn for_each_frame<R: Read, S: hound::Sample>(
    reader: &mut WavReader<R>,
    channels: usize,
    to_f32: impl Fn(S) -> f32,
    sink: &mut Sink,
    eof: &Cell<bool>,
) -> Result<(), VoiceError> {
    let mut frame: Frame = [0.0; 2];
    let mut filled = 0;
    for sample in reader.samples::<S>() {
        let value = to_f32(sample.map_err(|err| wav_error(err, eof))?);
        // Untrusted float data: no NaN or infinity into libopus, and no
        // values far outside full scale.
        let value = if value.is_finite() {
            value.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        if let Some(slot) = frame.get_mut(filled) {
            *slot = value;
        }
        filled += 1;
        if filled == channels {
            sink.push(frame)?;
            filled = 0;
        }
    }
    Ok(())
}

/// The encoder, behind a resampler when the WAV rate is not one Opus takes.
struct Sink {
    encoder: OggOpusEncoder,
    resampler: Option<LinearResampler>,
    resampled: Vec<Frame>,
}

impl Sink {
    fn new(encoder: OggOpusEncoder, rate: u32, encode_rate: u32) -> Self {
        Self {
            encoder,
            resampler: (rate != encode_rate).then(|| LinearResampler::new(rate, encode_rate)),
            resampled: Vec::new(),
        }
    }

    fn push(&mut self, frame: Frame) -> Result<(), VoiceError> {
        match &mut self.resampler {
            None => self.encoder.push(frame),
            Some(resampler) => {
                resampler.push(frame, &mut self.resampled);
                self.drain()
            }
        }
    }

    fn drain(&mut self) -> Result<(), VoiceError> {
        for frame in self.resampled.drain(..) {
            self.encoder.push(frame)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>, VoiceError> {
        if let Some(resampler) = &mut self.resampler {
            resampler.finish(&mut self.resampled);
            self.drain()?;
        }
        self.encoder.finish()
    }
}

/// Passes reads through and notes when the input has run out, so a
/// truncated file can be told apart from a failing disk (hound reports both
/// as an I/O error).
struct EofFlag<'a, R> {
    inner: R,
    eof: &'a Cell<bool>,
}

impl<R: Read> Read for EofFlag<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.set(true);
        }
        Ok(n)
    }
}

fn wav_error(err: hound::Error, eof: &Cell<bool>) -> VoiceError {
    match err {
        hound::Error::IoError(_) if eof.get() => {
            VoiceError::Malformed("the WAV file ends before its audio data does".to_owned())
        }
        hound::Error::IoError(err) => VoiceError::Io(err),
        hound::Error::FormatError(reason) => VoiceError::Malformed(reason.to_owned()),
        hound::Error::Unsupported | hound::Error::TooWide => {
            VoiceError::Unsupported("this WAV sample encoding (only PCM or float)".to_owned())
        }
        other => VoiceError::Malformed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::f32::consts::TAU;

    use crate::codec::Decoder;
    use hound::{WavSpec, WavWriter};
    use ogg::PacketReader;

    use super::*;
    use crate::{is_ogg_opus, ogg_opus_duration_ms};

    /// A WAV of `secs` seconds of a sine per channel (`freqs[c]` Hz).
    fn sine_wav(rate: u32, bits: u16, format: SampleFormat, freqs: &[f32], secs: f32) -> Vec<u8> {
        let spec = WavSpec {
            channels: freqs.len() as u16,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        };
        let mut wav = Vec::new();
        let mut writer = WavWriter::new(Cursor::new(&mut wav), spec).unwrap();
        let frames = (rate as f32 * secs) as u32;
        for i in 0..frames {
            for &freq in freqs {
                let x = 0.5 * (TAU * freq * i as f32 / rate as f32).sin();
                match (format, bits) {
                    (SampleFormat::Float, _) => writer.write_sample(x).unwrap(),
                    (SampleFormat::Int, 8) => writer.write_sample((x * 127.0) as i8).unwrap(),
                    (SampleFormat::Int, 16) => writer.write_sample((x * 32767.0) as i16).unwrap(),
                    (SampleFormat::Int, b) => {
                        let full = ((1u64 << (b - 1)) - 1) as f64;
                        writer.write_sample((f64::from(x) * full) as i32).unwrap()
                    }
                }
            }
        }
        writer.finalize().unwrap();
        wav
    }

    /// Decodes a voice note at 48 kHz, trimmed by pre-skip and the final
    /// granule position as a player would; returns one Vec per channel.
    fn decode(ogg: &[u8]) -> Vec<Vec<i16>> {
        let mut packets = PacketReader::new(Cursor::new(ogg));
        let head = packets.read_packet().unwrap().unwrap();
        assert_eq!(&head.data[..8], b"OpusHead");
        let channels = usize::from(head.data[9]);
        let pre_skip = usize::from(u16::from_le_bytes([head.data[10], head.data[11]]));
        let tags = packets.read_packet().unwrap().unwrap();
        assert_eq!(&tags.data[..8], b"OpusTags");

        let mut decoder = Decoder::new(48_000, channels as u8).unwrap();
        let mut pcm = Vec::new();
        let mut buf = vec![0i16; 5760 * channels];
        let mut end = 0;
        while let Some(packet) = packets.read_packet().unwrap() {
            let n = decoder.decode(&packet.data, &mut buf).unwrap();
            pcm.extend_from_slice(&buf[..n * channels]);
            if packet.last_in_stream() {
                end = packet.absgp_page() as usize;
            }
        }
        assert!(
            end >= pre_skip && end * channels <= pcm.len(),
            "granule within decoded audio"
        );
        let pcm = &pcm[pre_skip * channels..end * channels];
        (0..channels)
            .map(|c| pcm.iter().skip(c).step_by(channels).copied().collect())
            .collect()
    }

    /// Frequency estimated from zero crossings.
    fn dominant_hz(samples: &[i16], rate: f32) -> f32 {
        let crossings = samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count();
        crossings as f32 / 2.0 / (samples.len() as f32 / rate)
    }

    #[test]
    fn cd_rate_sine_round_trips() {
        let wav = sine_wav(44_100, 16, SampleFormat::Int, &[440.0], 2.0);
        let note = wav_to_ogg_opus(wav.as_slice()).unwrap();
        assert!(is_ogg_opus(&note.ogg));
        assert_eq!(note.channels, 1);
        assert!(
            (1900..=2100).contains(&note.duration_ms),
            "{}",
            note.duration_ms
        );
        let shown = ogg_opus_duration_ms(&note.ogg).unwrap();
        assert!((1990..=2010).contains(&shown), "{shown}");
        // 2 s at 32 kbit/s is about 8 KB; the WAV was 176 KB.
        assert!(note.ogg.len() < 12_000, "{} bytes", note.ogg.len());

        let pcm = decode(&note.ogg);
        assert_eq!(pcm.len(), 1);
        assert!(
            (95_000..=97_000).contains(&pcm[0].len()),
            "{}",
            pcm[0].len()
        );
        let hz = dominant_hz(&pcm[0], 48_000.0);
        assert!((400.0..480.0).contains(&hz), "{hz} Hz");
    }

    #[test]
    fn stereo_48k_keeps_both_channels() {
        let wav = sine_wav(48_000, 16, SampleFormat::Int, &[300.0, 600.0], 1.0);
        let note = wav_to_ogg_opus(wav.as_slice()).unwrap();
        assert_eq!(note.channels, 2);
        assert_eq!(note.duration_ms, 1000);
        assert_eq!(note.ogg[28 + 9], 2, "OpusHead channel count");
        let pcm = decode(&note.ogg);
        assert_eq!(pcm.len(), 2);
        assert_eq!(pcm[0].len(), 48_000);
        let (left, right) = (
            dominant_hz(&pcm[0], 48_000.0),
            dominant_hz(&pcm[1], 48_000.0),
        );
        assert!((270.0..330.0).contains(&left), "left {left} Hz");
        assert!((560.0..640.0).contains(&right), "right {right} Hz");
    }

    #[test]
    fn every_sample_format_is_read() {
        for (bits, format) in [
            (8, SampleFormat::Int),
            (24, SampleFormat::Int),
            (32, SampleFormat::Int),
            (32, SampleFormat::Float),
        ] {
            let wav = sine_wav(16_000, bits, format, &[440.0], 0.5);
            let note = wav_to_ogg_opus(wav.as_slice()).unwrap();
            assert_eq!(note.duration_ms, 500, "{bits}-bit {format:?}");
            let hz = dominant_hz(&decode(&note.ogg)[0], 48_000.0);
            assert!(
                (400.0..480.0).contains(&hz),
                "{bits}-bit {format:?}: {hz} Hz"
            );
        }
    }

    #[test]
    fn garbage_is_not_audio() {
        let inputs: [&[u8]; 4] = [
            b"",
            b"RIFF",
            b"hello, this is not a recording",
            b"OggS\0\x02",
        ];
        for input in inputs {
            assert!(matches!(wav_to_ogg_opus(input), Err(VoiceError::NotAudio)));
        }
    }

    /// A reader that fails if anything past the WAV header is requested.
    struct HeaderOnly(Cursor<Vec<u8>>);

    impl Read for HeaderOnly {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 if !buf.is_empty() => Err(io::Error::other("the audio data was read")),
                n => Ok(n),
            }
        }
    }

    fn header(channels: u16, rate: u32, bits: u16, data_len: u32) -> Vec<u8> {
        let align = channels * bits / 8;
        let mut h = Vec::new();
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&data_len.saturating_add(36).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // PCM
        h.extend_from_slice(&channels.to_le_bytes());
        h.extend_from_slice(&rate.to_le_bytes());
        h.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
        h.extend_from_slice(&align.to_le_bytes());
        h.extend_from_slice(&bits.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&data_len.to_le_bytes());
        h
    }

    #[test]
    fn two_hours_is_refused_from_the_header() {
        let data_len = 2 * 3600 * 48_000 * 2;
        let input = HeaderOnly(Cursor::new(header(1, 48_000, 16, data_len)));
        match wav_to_ogg_opus(input) {
            Err(VoiceError::TooLong { secs, max }) => {
                assert_eq!((secs, max), (7200, MAX_VOICE_SECS));
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
    }

    #[test]
    fn unsupported_layouts_are_named() {
        let six = HeaderOnly(Cursor::new(header(6, 48_000, 16, 0)));
        assert!(matches!(wav_to_ogg_opus(six), Err(VoiceError::Unsupported(m)) if m.contains('6')));
        let slow = HeaderOnly(Cursor::new(header(1, 4_000, 16, 0)));
        assert!(matches!(
            wav_to_ogg_opus(slow),
            Err(VoiceError::Unsupported(_))
        ));
    }

    #[test]
    fn truncated_data_is_malformed() {
        let mut wav = sine_wav(16_000, 16, SampleFormat::Int, &[440.0], 0.5);
        wav.truncate(wav.len() / 2);
        assert!(matches!(
            wav_to_ogg_opus(wav.as_slice()),
            Err(VoiceError::Malformed(_))
        ));
        let empty = header(1, 16_000, 16, 0);
        assert!(matches!(
            wav_to_ogg_opus(empty.as_slice()),
            Err(VoiceError::Malformed(_))
        ));
    }
}
