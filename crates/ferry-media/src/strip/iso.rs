//! ISO media files (MP4, MOV): same-length overwrites that remove metadata
//! without moving a byte.

use std::io::{Read, Seek, SeekFrom};

use super::StripError;

/// Largest single overwrite (a metadata box, a track's samples).
const MAX_PATCH: u64 = 64 * 1024 * 1024;
/// Largest sample table read.
const MAX_TABLE: u64 = 16 * 1024 * 1024;
/// Deepest box nesting followed.
const MAX_DEPTH: usize = 8;

/// An overwrite of `len` bytes at `at`: zeros, or `bytes` (of that length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patch {
    /// Offset in the file.
    pub at: u64,
    /// Bytes replaced.
    pub len: u64,
    /// What replaces them; `None`: zeros.
    pub bytes: Option<Vec<u8>>,
}

#[derive(Default)]
struct Track {
    handler: Option<[u8; 4]>,
    stsz: Option<(u64, u64)>,
    stsc: Option<(u64, u64)>,
    stco: Option<(u64, u64, bool)>,
}

struct Walk<'r, R> {
    r: &'r mut R,
    patches: Vec<Patch>,
}

fn zeros(at: u64, len: u64) -> Result<Patch, StripError> {
    if len > MAX_PATCH {
        return Err(StripError::TooLarge(len));
    }
    Ok(Patch {
        at,
        len,
        bytes: None,
    })
}

impl<R: Read + Seek> Walk<'_, R> {
    fn read_at(&mut self, at: u64, buf: &mut [u8]) -> Result<(), StripError> {
        self.r.seek(SeekFrom::Start(at))?;
        self.r.read_exact(buf)?;
        Ok(())
    }

    fn table(&mut self, (at, len): (u64, u64)) -> Result<Vec<u8>, StripError> {
        if len > MAX_TABLE {
            return Err(StripError::TooLarge(len));
        }
        let mut b = vec![0; usize::try_from(len).map_err(|_| StripError::TooLarge(len))?];
        self.read_at(at, &mut b)?;
        Ok(b)
    }

    /// The boxes in `[start, end)`, inside `parent`.
    fn boxes(
        &mut self,
        start: u64,
        end: u64,
        parent: &[u8; 4],
        depth: usize,
        track: &mut Track,
    ) -> Result<(), StripError> {
        if depth > MAX_DEPTH {
            return Err(StripError::Malformed("boxes nested too deep"));
        }
        let mut at = start;
        while at < end {
            if end - at < 8 {
                return Err(StripError::Malformed("truncated box"));
            }
            let mut h = [0u8; 8];
            self.read_at(at, &mut h)?;
            let kind: [u8; 4] = [h[4], h[5], h[6], h[7]];
            let (size, head) = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
                0 if depth == 0 => (end - at, 8),
                1 => {
                    let mut l = [0u8; 8];
                    self.read_at(at + 8, &mut l)?;
                    (u64::from_be_bytes(l), 16)
                }
                n => (u64::from(n), 8),
            };
            if size < head || size > end - at {
                return Err(StripError::Malformed("bad box size"));
            }
            let (body, body_len) = (at + head, size - head);
            self.one(at, &kind, body, body_len, parent, depth, track)?;
            at += size;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn one(
        &mut self,
        at: u64,
        kind: &[u8; 4],
        body: u64,
        len: u64,
        parent: &[u8; 4],
        depth: usize,
        track: &mut Track,
    ) -> Result<(), StripError> {
        let container_level = depth == 0 || matches!(parent, b"moov" | b"trak" | b"mdia");
        match kind {
            // User data (QuickTime ©xyz location, ©day, make, model),
            // metadata item lists (Apple's location keys), XMP and other
            // vendor boxes: a `free` box of zeros in their place.
            b"udta" | b"meta" | b"uuid" | b"XMP_" if container_level => {
                self.patches.push(Patch {
                    at: at + 4,
                    len: 4,
                    bytes: Some(b"free".to_vec()),
                });
                self.patches.push(zeros(body, len)?);
            }
            b"moov" | b"mdia" | b"minf" | b"stbl" => {
                self.boxes(body, body + len, kind, depth + 1, track)?;
            }
            b"trak" => {
                let mut t = Track::default();
                self.boxes(body, body + len, kind, depth + 1, &mut t)?;
                self.clear_samples(&t)?;
            }
            // Creation and modification times.
            b"mvhd" | b"tkhd" | b"mdhd" => {
                let mut v = [0u8; 1];
                self.read_at(body, &mut v)?;
                let n = if v[0] == 1 { 16 } else { 8 };
                if len < 4 + n {
                    return Err(StripError::Malformed("short header box"));
                }
                self.patches.push(zeros(body + 4, n)?);
            }
            b"hdlr" if parent == b"mdia" => {
                if len < 12 {
                    return Err(StripError::Malformed("short handler box"));
                }
                let mut h = [0u8; 4];
                self.read_at(body + 8, &mut h)?;
                track.handler = Some(h);
            }
            b"stsz" => track.stsz = Some((body, len)),
            b"stsc" => track.stsc = Some((body, len)),
            b"stco" => track.stco = Some((body, len, false)),
            b"co64" => track.stco = Some((body, len, true)),
            b"stz2" if parent == b"stbl" => track.stsz = None,
            _ => {}
        }
        Ok(())
    }

    /// Zeroes every sample of a track that is neither picture nor sound
    /// (GPS, timecode, other timed metadata).
    fn clear_samples(&mut self, t: &Track) -> Result<(), StripError> {
        if matches!(t.handler.as_ref(), Some(b"vide" | b"soun")) {
            return Ok(());
        }
        let (Some(stsz), Some(stsc), Some((co_at, co_len, wide))) = (t.stsz, t.stsc, t.stco) else {
            // No samples, or tables this reader does not know: the track
            // cannot be emptied, so the file is not sent as clean.
            return if t.stco.is_some() {
                Err(StripError::Malformed(
                    "a metadata track this version cannot empty",
                ))
            } else {
                Ok(())
            };
        };
        let be32 = |b: &[u8], i: usize| -> Option<u32> {
            Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
        };
        let sz = self.table(stsz)?;
        let uniform = be32(&sz, 4).ok_or(StripError::Malformed("bad sample table"))?;
        let count = be32(&sz, 8).ok_or(StripError::Malformed("bad sample table"))? as usize;
        // Counts are bounded by what the tables hold (a header claiming
        // more cannot make the loops run on).
        let count = if uniform == 0 {
            count.min(sz.len().saturating_sub(12) / 4)
        } else {
            count
        };
        let size_of = |s: usize| -> Option<u64> {
            if uniform != 0 {
                Some(u64::from(uniform))
            } else {
                be32(&sz, 12 + 4 * s).map(u64::from)
            }
        };
        let sc = self.table(stsc)?;
        let entries = (be32(&sc, 4).ok_or(StripError::Malformed("bad sample table"))? as usize)
            .min(sc.len().saturating_sub(8) / 12);
        let co = self.table((co_at, co_len))?;
        let chunks = (be32(&co, 4).ok_or(StripError::Malformed("bad sample table"))? as usize)
            .min(co.len().saturating_sub(8) / if wide { 8 } else { 4 });
        let offset_of = |c: usize| -> Option<u64> {
            if wide {
                Some(u64::from_be_bytes(
                    co.get(8 + 8 * c..16 + 8 * c)?.try_into().ok()?,
                ))
            } else {
                be32(&co, 8 + 4 * c).map(u64::from)
            }
        };
        let mut sample = 0usize;
        let mut total = 0u64;
        for c in 0..chunks {
            // The stsc entry in force for chunk c + 1 (1-based).
            let per_chunk = (0..entries)
                .filter_map(|e| Some((be32(&sc, 8 + 12 * e)?, be32(&sc, 12 + 12 * e)?)))
                .take_while(|(first, _)| u64::from(*first) <= c as u64 + 1)
                .last()
                .map(|(_, n)| n as usize)
                .ok_or(StripError::Malformed("bad sample table"))?;
            let mut at = offset_of(c).ok_or(StripError::Malformed("bad sample table"))?;
            for _ in 0..per_chunk {
                if sample >= count {
                    break;
                }
                let len = size_of(sample).ok_or(StripError::Malformed("bad sample table"))?;
                total = total.saturating_add(len);
                if total > MAX_PATCH {
                    return Err(StripError::TooLarge(total));
                }
                self.patches.push(zeros(at, len)?);
                at = at
                    .checked_add(len)
                    .ok_or(StripError::Malformed("bad sample table"))?;
                sample += 1;
            }
        }
        Ok(())
    }
}

/// The overwrites that remove a video's metadata: `(offset, bytes)`, each
/// replacing as many bytes, none beyond `size`.
pub fn video_patches<R: Read + Seek>(r: &mut R, size: u64) -> Result<Vec<Patch>, StripError> {
    let mut w = Walk {
        r,
        patches: Vec::new(),
    };
    w.boxes(0, size, b"\0\0\0\0", 0, &mut Track::default())?;
    if w.patches.iter().any(|p| p.at.saturating_add(p.len) > size) {
        return Err(StripError::Malformed("sample outside the file"));
    }
    Ok(w.patches)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn bx(kind: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(body.len() + 8)
            .unwrap()
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn apply(mut file: Vec<u8>, patches: &[Patch]) -> Vec<u8> {
        for p in patches {
            let at = usize::try_from(p.at).unwrap();
            let len = usize::try_from(p.len).unwrap();
            match &p.bytes {
                Some(b) => file[at..at + len].copy_from_slice(b),
                None => file[at..at + len].fill(0),
            }
        }
        file
    }

    /// A small MOV: a video track, a GPS metadata track with one sample in
    /// mdat, a location in moov/udta, dates in the headers.
    fn sample() -> (Vec<u8>, usize) {
        let ftyp = bx(b"ftyp", b"qt  \0\0\0\0qt  ");
        let mdat_body = b"VIDEOFRAME+37.5665+126.9780/".to_vec();
        let gps_at_in_mdat = 10;
        let mut mvhd = vec![0u8; 100];
        mvhd[4..8].copy_from_slice(&0xDEAD_BEEFu32.to_be_bytes());
        let udta = bx(b"udta", &bx(b"\xA9xyz", b"+37.5665+126.9780/"));
        let mk_trak = |handler: &[u8], stco_offset: u32, size: u32| {
            let mut hdlr = vec![0u8; 24];
            hdlr[8..12].copy_from_slice(handler);
            let mut stsz = vec![0u8; 12];
            stsz[4..8].copy_from_slice(&size.to_be_bytes());
            stsz[8..12].copy_from_slice(&1u32.to_be_bytes());
            let mut stsc = vec![0u8; 8];
            stsc[4..8].copy_from_slice(&1u32.to_be_bytes());
            stsc.extend_from_slice(&1u32.to_be_bytes());
            stsc.extend_from_slice(&1u32.to_be_bytes());
            stsc.extend_from_slice(&1u32.to_be_bytes());
            let mut stco = vec![0u8; 8];
            stco[4..8].copy_from_slice(&1u32.to_be_bytes());
            stco.extend_from_slice(&stco_offset.to_be_bytes());
            let stbl = bx(
                b"stbl",
                &[bx(b"stsz", &stsz), bx(b"stsc", &stsc), bx(b"stco", &stco)].concat(),
            );
            let minf = bx(b"minf", &stbl);
            let mdia = bx(
                b"mdia",
                &[bx(b"mdhd", &[0u8; 24]), bx(b"hdlr", &hdlr), minf].concat(),
            );
            bx(b"trak", &[bx(b"tkhd", &[0u8; 84]), mdia].concat())
        };
        // Offsets are computed after layout: mdat goes last.
        let probe = |gps: u32, vid: u32| {
            let moov = bx(
                b"moov",
                &[
                    bx(b"mvhd", &mvhd),
                    mk_trak(b"vide", vid, 10),
                    mk_trak(b"meta", gps, 18),
                    udta.clone(),
                ]
                .concat(),
            );
            [ftyp.clone(), moov].concat()
        };
        let head_len = probe(0, 0).len();
        let mdat_at = head_len + 8;
        let head = probe(
            u32::try_from(mdat_at + gps_at_in_mdat).unwrap(),
            u32::try_from(mdat_at).unwrap(),
        );
        let file = [head, bx(b"mdat", &mdat_body)].concat();
        (file, mdat_at)
    }

    #[test]
    fn location_dates_and_metadata_samples_go_and_nothing_moves() {
        let (file, mdat_at) = sample();
        let size = file.len() as u64;
        let patches = video_patches(&mut std::io::Cursor::new(&file), size).unwrap();
        let clean = apply(file.clone(), &patches);
        assert_eq!(clean.len(), file.len());
        let hay = String::from_utf8_lossy(&clean);
        assert!(!hay.contains("37.5665"), "location left: {hay}");
        assert!(!hay.contains("udta"));
        assert!(!clean.windows(4).any(|w| w == 0xDEAD_BEEFu32.to_be_bytes()));
        // The video frame is untouched.
        assert_eq!(&clean[mdat_at..mdat_at + 10], b"VIDEOFRAME");
        // Still a well-formed file, and cleaning again finds nothing more
        // to remove but the same places.
        let again = video_patches(&mut std::io::Cursor::new(&clean), size).unwrap();
        assert_eq!(apply(clean.clone(), &again), clean);
    }

    #[test]
    fn damaged_videos_are_refused_without_panicking() {
        let (file, _) = sample();
        for n in [0, 5, 12, 40, file.len() / 2, file.len() - 1] {
            let cut = &file[..n];
            let _ = video_patches(&mut std::io::Cursor::new(cut), cut.len() as u64);
        }
        // A sample table claiming four billion entries ends at once.
        let mut huge = file.clone();
        let at = huge.windows(4).position(|w| w == b"stsc").unwrap() + 8;
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let _ = video_patches(&mut std::io::Cursor::new(&huge), huge.len() as u64);
        let mut bad = file.clone();
        bad[0] = 0x7F; // ftyp claims more than the file
        assert!(video_patches(&mut std::io::Cursor::new(&bad), bad.len() as u64).is_err());
    }
}
