//! Ogg Opus (RFC 7845): the two header packets, an encoder that muxes
//! libopus packets into Ogg pages, and the two header checks the client
//! needs on files it did not make (is it Ogg Opus, how long is it).

use ogg::{PacketWriteEndInfo, PacketWriter};

use crate::codec::{CodecError, Encoder};

use crate::VoiceError;

/// Ogg logical stream serial. A voice note holds exactly one stream, so a
/// fixed serial is as good as a random one and keeps the output
/// deterministic (no RNG in this crate).
const STREAM_SERIAL: u32 = 0x4665_7272; // "Ferr"

/// Granule positions are always counted at 48 kHz, whatever the input rate.
pub(crate) const GRANULE_RATE: u32 = 48_000;

/// Every packet holds 20 ms of audio.
const FRAME_MS: u32 = 20;

/// 20 ms at 48 kHz: the granule increment per packet.
const GRANULE_PER_PACKET: u64 = (GRANULE_RATE / 1000 * FRAME_MS) as u64;

/// End an Ogg page every 50 packets (1 s), as RFC 7845 §6 recommends for
/// seeking granularity, instead of letting pages fill to 255 segments.
const PACKETS_PER_PAGE: u64 = 50;

/// Largest Opus packet libopus will produce, as its docs recommend.
const MAX_PACKET: usize = 4000;

/// Target bitrates: plenty for speech, about 240 / 360 KB per minute.
const BITRATE_MONO: i32 = 32_000;
const BITRATE_STEREO: i32 = 48_000;

/// The vendor string in OpusTags.
const VENDOR: &[u8] = b"ferry";

/// Streams PCM frames through libopus into an in-memory Ogg Opus file.
///
/// Memory is the encoded output plus one 20 ms frame, whatever the input
/// length.
pub(crate) struct OggOpusEncoder {
    encoder: Encoder,
    writer: PacketWriter<'static, Vec<u8>>,
    channels: usize,
    /// Samples per channel in one 20 ms frame at the encoder's rate.
    frame_len: usize,
    /// The partial frame being filled, interleaved.
    frame: Vec<f32>,
    /// Scratch space for one encoded packet.
    scratch: Vec<u8>,
    /// The last encoded packet, held back until we know whether it ends the
    /// stream (the EOS flag must be on the page that carries it).
    pending: Option<Vec<u8>>,
    packets_written: u64,
    /// Input samples per channel pushed so far (encoder rate).
    samples_in: u64,
    /// Samples per channel handed to libopus so far, padding included.
    samples_encoded: u64,
    /// Encoder delay at the encoder's rate; this much silence is appended at
    /// the end so the last real sample comes out of the decoder.
    lookahead: u64,
    /// 48 kHz samples per encoder-rate sample (1, 2, 3, 4 or 6).
    granule_scale: u64,
    pre_skip: u64,
}

impl OggOpusEncoder {
    /// Starts a stream and writes its two header pages.
    ///
    /// `rate` must be one Opus accepts (8, 12, 16, 24 or 48 kHz);
    /// `input_rate` is only recorded in OpusHead for information.
    pub(crate) fn new(rate: u32, channels: u8, input_rate: u32) -> Result<Self, VoiceError> {
        let bitrate = match channels {
            1 => BITRATE_MONO,
            2 => BITRATE_STEREO,
            n => return Err(VoiceError::Unsupported(format!("{n} channels"))),
        };
        if !matches!(rate, 8_000 | 12_000 | 16_000 | 24_000 | 48_000) {
            return Err(VoiceError::Encode(format!(
                "Opus cannot encode at {rate} Hz"
            )));
        }
        let mut encoder = Encoder::voip(rate, channels).map_err(opus_error)?;
        encoder.set_bitrate(bitrate).map_err(opus_error)?;
        let lookahead = encoder.lookahead().map_err(opus_error)?;
        let lookahead = u64::try_from(lookahead)
            .map_err(|_| VoiceError::Encode(format!("negative encoder lookahead {lookahead}")))?;
        let granule_scale = u64::from(GRANULE_RATE / rate);
        let pre_skip = lookahead * granule_scale;
        let pre_skip_field = u16::try_from(pre_skip)
            .map_err(|_| VoiceError::Encode(format!("encoder lookahead {pre_skip} too large")))?;

        let mut writer = PacketWriter::new(Vec::new());
        // RFC 7845 §3: OpusHead alone on the first page, OpusTags starting the
        // second, audio from the third; header pages have granule position 0.
        writer
            .write_packet(
                opus_head(channels, pre_skip_field, input_rate),
                STREAM_SERIAL,
                PacketWriteEndInfo::EndPage,
                0,
            )
            .map_err(write_error)?;
        writer
            .write_packet(opus_tags(), STREAM_SERIAL, PacketWriteEndInfo::EndPage, 0)
            .map_err(write_error)?;

        let channels = usize::from(channels);
        let frame_len = (rate / 1000 * FRAME_MS) as usize;
        Ok(Self {
            encoder,
            writer,
            channels,
            frame_len,
            frame: Vec::with_capacity(frame_len * channels),
            scratch: vec![0; MAX_PACKET],
            pending: None,
            packets_written: 0,
            samples_in: 0,
            samples_encoded: 0,
            lookahead,
            granule_scale,
            pre_skip,
        })
    }

    /// Adds one sample per channel (only `frame[0]` is used for mono).
    pub(crate) fn push(&mut self, frame: [f32; 2]) -> Result<(), VoiceError> {
        self.frame.extend_from_slice(&frame[..self.channels.min(2)]);
        self.samples_in += 1;
        if self.frame.len() >= self.frame_len * self.channels {
            self.encode_frame()?;
        }
        Ok(())
    }

    /// Flushes the encoder and returns the finished Ogg Opus file.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, VoiceError> {
        // Pad with silence past the encoder delay so every real sample is
        // decodable; the last granule position then trims the excess
        // (RFC 7845 §4.5, end trimming).
        let needed = self.samples_in + self.lookahead;
        while self.samples_encoded < needed {
            self.frame.resize(self.frame_len * self.channels, 0.0);
            self.encode_frame()?;
        }
        let last = self
            .pending
            .take()
            .ok_or_else(|| VoiceError::Encode("no audio was encoded".to_owned()))?;
        self.write_audio(last, true)?;
        Ok(self.writer.into_inner())
    }

    fn encode_frame(&mut self) -> Result<(), VoiceError> {
        let len = self
            .encoder
            .encode_float(&self.frame, &mut self.scratch)
            .map_err(opus_error)?;
        self.frame.clear();
        self.samples_encoded += self.frame_len as u64;
        let packet = self
            .scratch
            .get(..len)
            .ok_or_else(|| VoiceError::Encode(format!("libopus returned {len} bytes")))?
            .to_vec();
        if let Some(previous) = self.pending.replace(packet) {
            self.write_audio(previous, false)?;
        }
        Ok(())
    }

    fn write_audio(&mut self, packet: Vec<u8>, last: bool) -> Result<(), VoiceError> {
        self.packets_written += 1;
        // Granule position: 48 kHz samples decoded after this packet,
        // pre-skip included (RFC 7845 §4). The last one counts only the real
        // samples, which trims the silence padding on playback.
        let decoded = self.packets_written * GRANULE_PER_PACKET;
        let (granule, end) = if last {
            let real = self.pre_skip + self.samples_in * self.granule_scale;
            (real.min(decoded), PacketWriteEndInfo::EndStream)
        } else if self.packets_written.is_multiple_of(PACKETS_PER_PAGE) {
            (decoded, PacketWriteEndInfo::EndPage)
        } else {
            (decoded, PacketWriteEndInfo::NormalPacket)
        };
        self.writer
            .write_packet(packet, STREAM_SERIAL, end, granule)
            .map_err(write_error)
    }
}

/// The identification header (RFC 7845 §5.1), channel mapping family 0.
fn opus_head(channels: u8, pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // mapping family: mono or stereo, no table
    head
}

/// The comment header (RFC 7845 §5.2): vendor string, no comments.
fn opus_tags() -> Vec<u8> {
    let mut tags = Vec::with_capacity(8 + 4 + VENDOR.len() + 4);
    tags.extend_from_slice(b"OpusTags");
    tags.extend_from_slice(&(VENDOR.len() as u32).to_le_bytes());
    tags.extend_from_slice(VENDOR);
    tags.extend_from_slice(&0u32.to_le_bytes());
    tags
}

fn opus_error(err: CodecError) -> VoiceError {
    VoiceError::Encode(err.to_string())
}

fn write_error(err: std::io::Error) -> VoiceError {
    VoiceError::Encode(format!("Ogg muxing failed: {err}"))
}

/// One Ogg page header, as far as these checks need it.
struct PageHeader<'a> {
    granule: u64,
    serial: u32,
    /// The page body (all packet data on the page).
    body: &'a [u8],
    /// Offset of the next page.
    next: usize,
}

/// Parses the page starting at `at`; `None` if it is not a whole page.
fn page_at(data: &[u8], at: usize) -> Option<PageHeader<'_>> {
    let header = data.get(at..at.checked_add(27)?)?;
    if header.get(..4)? != b"OggS" || *header.get(4)? != 0 {
        return None;
    }
    let granule = u64::from_le_bytes(header.get(6..14)?.try_into().ok()?);
    let serial = u32::from_le_bytes(header.get(14..18)?.try_into().ok()?);
    let segments = usize::from(*header.get(26)?);
    let lacing_start = at + 27;
    let lacing = data.get(lacing_start..lacing_start + segments)?;
    let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
    let body_start = lacing_start + segments;
    let body = data.get(body_start..body_start + body_len)?;
    Some(PageHeader {
        granule,
        serial,
        body,
        next: body_start + body_len,
    })
}

/// True if `head` starts with an Ogg page whose first packet is an Opus
/// identification header ("OpusHead"), i.e. the start of an Ogg Opus file.
///
/// Only the first page is looked at, so the first few hundred bytes of a
/// file are enough.
pub fn is_ogg_opus(head: &[u8]) -> bool {
    page_at(head, 0).is_some_and(|page| page.body.starts_with(b"OpusHead"))
}

/// The playable length of an Ogg Opus file in milliseconds, for display:
/// the last page's granule position minus the pre-skip from OpusHead.
///
/// `None` if `ogg` is not a well-formed Ogg Opus file or has no audio. Page
/// checksums are not verified; this is a header read, not a validation.
pub fn ogg_opus_duration_ms(ogg: &[u8]) -> Option<u64> {
    let first = page_at(ogg, 0)?;
    let head = first.body;
    if !head.starts_with(b"OpusHead") {
        return None;
    }
    let pre_skip = u64::from(u16::from_le_bytes(head.get(10..12)?.try_into().ok()?));
    let serial = first.serial;
    let mut last_granule = None;
    let mut at = first.next;
    while at < ogg.len() {
        let page = page_at(ogg, at)?;
        // u64::MAX (-1) marks a page on which no packet ends.
        if page.serial == serial && page.granule != u64::MAX {
            last_granule = Some(page.granule);
        }
        at = page.next;
    }
    let samples = last_granule?.checked_sub(pre_skip)?;
    Some(samples.checked_mul(1000)? / u64::from(GRANULE_RATE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_silence(rate: u32, channels: u8, samples: u64) -> Vec<u8> {
        let mut encoder = OggOpusEncoder::new(rate, channels, rate).unwrap();
        for _ in 0..samples {
            encoder.push([0.0, 0.0]).unwrap();
        }
        encoder.finish().unwrap()
    }

    #[test]
    fn header_pages_follow_rfc_7845() {
        let ogg = encode_silence(48_000, 1, 4800);
        let first = page_at(&ogg, 0).unwrap();
        assert_eq!(first.granule, 0);
        assert_eq!(first.body.len(), 19, "OpusHead alone on the first page");
        assert_eq!(&first.body[..8], b"OpusHead");
        assert_eq!(first.body[8], 1, "version");
        assert_eq!(first.body[9], 1, "channels");
        assert_eq!(u16::from_le_bytes([first.body[10], first.body[11]]), 312);
        assert_eq!(ogg[5] & 0x02, 0x02, "beginning-of-stream flag");

        let second = page_at(&ogg, first.next).unwrap();
        assert_eq!(second.granule, 0);
        assert_eq!(second.body, b"OpusTags\x05\0\0\0ferry\0\0\0\0");
    }

    #[test]
    fn last_page_ends_the_stream_and_trims_padding() {
        // 100 ms at 16 kHz: 1600 samples = 4800 at 48 kHz.
        let ogg = encode_silence(16_000, 1, 1600);
        let mut at = 0;
        let mut last = None;
        while let Some(page) = page_at(&ogg, at) {
            last = Some((at, page.granule));
            at = page.next;
        }
        assert_eq!(at, ogg.len(), "the file is whole pages");
        let (last_at, granule) = last.unwrap();
        assert_eq!(ogg[last_at + 5] & 0x04, 0x04, "end-of-stream flag");
        assert_eq!(granule, 312 + 4800);
        assert_eq!(ogg_opus_duration_ms(&ogg), Some(100));
    }

    #[test]
    fn pages_are_about_one_second() {
        // 3 s at 48 kHz: 150 packets, 3 full audio pages + the final one.
        let ogg = encode_silence(48_000, 2, 144_000);
        let mut at = 0;
        let mut granules = Vec::new();
        while let Some(page) = page_at(&ogg, at) {
            granules.push(page.granule);
            at = page.next;
        }
        assert_eq!(granules[..5], [0, 0, 48_000, 96_000, 144_000]);
        assert_eq!(granules.last(), Some(&(144_000 + 312)));
    }

    #[test]
    fn rejects_what_is_not_ogg_opus() {
        assert!(!is_ogg_opus(b""));
        assert!(!is_ogg_opus(b"OggS"));
        assert!(!is_ogg_opus(b"RIFF\x24\0\0\0WAVEfmt "));
        let ogg = encode_silence(48_000, 1, 960);
        assert!(is_ogg_opus(&ogg));
        let mut vorbis = ogg.clone();
        vorbis[28..36].copy_from_slice(b"\x01vorbis\0");
        assert!(!is_ogg_opus(&vorbis));
        assert_eq!(ogg_opus_duration_ms(&vorbis), None);
        // Truncated files never panic and give no duration.
        // The first page is 27 header bytes, 1 lacing byte and the 19-byte
        // OpusHead.
        for len in 0..ogg.len() {
            assert_eq!(is_ogg_opus(&ogg[..len]), len >= 47, "length {len}");
            assert_eq!(ogg_opus_duration_ms(&ogg[..len]), None, "length {len}");
        }
    }
}
