//! JPEG, PNG and WebP, rewritten without their metadata.

use super::StripError;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const COM: u8 = 0xFE;

fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

/// Whether a JPEG segment stays: everything that decodes the picture, the
/// JFIF header, Adobe's colour transform and an ICC colour profile; never
/// EXIF/XMP (APP1), MPF or FlashPix (other APP2), IPTC (APP13), any other
/// application block, or comments.
fn keep_segment(marker: u8, body: &[u8]) -> bool {
    match marker {
        APP0 | APP14 => true,
        APP2 => body.starts_with(b"ICC_PROFILE\0"),
        0xE3..=0xED | 0xEF | APP1 | COM => false,
        _ => true,
    }
}

/// The EXIF orientation (1–8) of an APP1 block, if it has one.
fn exif_orientation(body: &[u8]) -> Option<u16> {
    let tiff = body.strip_prefix(b"Exif\0\0")?;
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let b = tiff.get(o..o + 2)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| -> Option<usize> {
        let b: [u8; 4] = tiff.get(o..o + 4)?.try_into().ok()?;
        usize::try_from(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
        .ok()
    };
    let ifd = u32_at(4)?;
    let n = usize::from(u16_at(ifd)?);
    (0..n).find_map(|i| {
        let e = ifd.checked_add(2 + 12 * i)?;
        (u16_at(e)? == 0x0112 && u16_at(e + 2)? == 3)
            .then(|| u16_at(e + 8))
            .flatten()
            .filter(|o| (2..=8).contains(o))
    })
}

/// A minimal APP1 block holding only an orientation.
fn orientation_block(o: u16) -> Vec<u8> {
    let mut b = vec![0xFF, APP1];
    let body: Vec<u8> = [
        &b"Exif\0\0MM\0*"[..],
        &8u32.to_be_bytes(),
        &1u16.to_be_bytes(),
        &0x0112u16.to_be_bytes(),
        &3u16.to_be_bytes(),
        &1u32.to_be_bytes(),
        &o.to_be_bytes(),
        &[0, 0],
        &0u32.to_be_bytes(),
    ]
    .concat();
    b.extend_from_slice(&u16::try_from(body.len() + 2).unwrap_or(0).to_be_bytes());
    b.extend_from_slice(&body);
    b
}

/// A JPEG without metadata: its orientation kept, anything after the end
/// of the picture (some phones append more there) dropped.
pub fn strip_jpeg(data: &[u8]) -> Result<Vec<u8>, StripError> {
    if !data.starts_with(&[0xFF, SOI]) {
        return Err(StripError::Malformed("not a JPEG"));
    }
    let mut out = vec![0xFF, SOI];
    let mut orientation = None;
    let mut header_at = None;
    let mut i = 2;
    loop {
        // The next marker (fill bytes 0xFF may precede it).
        if data.get(i) != Some(&0xFF) {
            return Err(StripError::Malformed("JPEG marker expected"));
        }
        while data.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *data.get(i).ok_or(StripError::Malformed("truncated JPEG"))?;
        i += 1;
        if marker == EOI {
            out.extend_from_slice(&[0xFF, EOI]);
            break;
        }
        if (0xD0..=0xD7).contains(&marker) || marker == 0x01 {
            out.extend_from_slice(&[0xFF, marker]);
            continue;
        }
        let len = data
            .get(i..i + 2)
            .map(be16)
            .ok_or(StripError::Malformed("truncated JPEG"))?;
        if len < 2 {
            return Err(StripError::Malformed("bad JPEG segment length"));
        }
        let seg = data
            .get(i..i + len)
            .ok_or(StripError::Malformed("truncated JPEG"))?;
        let body = &seg[2..];
        i += len;
        if marker == APP1 && orientation.is_none() {
            orientation = exif_orientation(body);
        }
        if keep_segment(marker, body) {
            if marker != APP0 && header_at.is_none() {
                header_at = Some(out.len());
            }
            out.extend_from_slice(&[0xFF, marker]);
            out.extend_from_slice(seg);
        }
        if marker == SOS {
            // Entropy-coded data runs to the next marker that is neither a
            // stuffed 0xFF00 nor a restart marker.
            let start = i;
            while i + 1 < data.len()
                && !(data[i] == 0xFF && data[i + 1] != 0 && !(0xD0..=0xD7).contains(&data[i + 1]))
            {
                i += 1;
            }
            if i + 1 >= data.len() {
                return Err(StripError::Malformed("JPEG without an end"));
            }
            out.extend_from_slice(&data[start..i]);
        }
    }
    if let Some(o) = orientation {
        let at = header_at.unwrap_or(2);
        out.splice(at..at, orientation_block(o));
    }
    Ok(out)
}

/// PNG chunks that stay: the critical ones (any chunk whose type starts
/// with a capital letter) and the ancillary ones about colour,
/// transparency, pixel size and animation; never text, time or EXIF.
fn keep_chunk(kind: &[u8]) -> bool {
    kind.first().is_some_and(u8::is_ascii_uppercase)
        || matches!(
            kind,
            b"tRNS"
                | b"cHRM"
                | b"gAMA"
                | b"iCCP"
                | b"sBIT"
                | b"sRGB"
                | b"bKGD"
                | b"hIST"
                | b"pHYs"
                | b"sPLT"
                | b"acTL"
                | b"fcTL"
                | b"fdAT"
                | b"cICP"
        )
}

/// A PNG without text, time or EXIF chunks (and nothing after its end).
pub fn strip_png(data: &[u8]) -> Result<Vec<u8>, StripError> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !data.starts_with(SIG) {
        return Err(StripError::Malformed("not a PNG"));
    }
    let mut out = SIG.to_vec();
    let mut i = SIG.len();
    loop {
        let head = data
            .get(i..i + 8)
            .ok_or(StripError::Malformed("truncated PNG"))?;
        let len = usize::try_from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]))
            .map_err(|_| StripError::Malformed("bad PNG chunk"))?;
        let end = i
            .checked_add(12)
            .and_then(|x| x.checked_add(len))
            .ok_or(StripError::Malformed("bad PNG chunk"))?;
        let chunk = data
            .get(i..end)
            .ok_or(StripError::Malformed("truncated PNG"))?;
        let kind = &head[4..8];
        if keep_chunk(kind) {
            out.extend_from_slice(chunk);
        }
        i = end;
        if kind == b"IEND" {
            return Ok(out);
        }
    }
}

/// A WebP without its EXIF and XMP chunks (flags and sizes fixed).
pub fn strip_webp(data: &[u8]) -> Result<Vec<u8>, StripError> {
    if data.len() < 12 || &data[..4] != b"RIFF" || &data[8..12] != b"WEBP" {
        return Err(StripError::Malformed("not a WebP"));
    }
    let riff_len = usize::try_from(u32::from_le_bytes([data[4], data[5], data[6], data[7]]))
        .map_err(|_| StripError::Malformed("bad WebP size"))?;
    let end = riff_len
        .checked_add(8)
        .filter(|&e| e <= data.len())
        .ok_or(StripError::Malformed("truncated WebP"))?;
    let mut out = b"RIFF\0\0\0\0WEBP".to_vec();
    let mut i = 12;
    while i < end {
        let head = data
            .get(i..i + 8)
            .ok_or(StripError::Malformed("truncated WebP"))?;
        let len = usize::try_from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]))
            .map_err(|_| StripError::Malformed("bad WebP chunk"))?;
        let padded = len + (len & 1);
        let next = i
            .checked_add(8 + padded)
            .filter(|&n| n <= end)
            .ok_or(StripError::Malformed("truncated WebP"))?;
        let kind = &head[..4];
        if kind != b"EXIF" && kind != b"XMP " {
            let at = out.len();
            out.extend_from_slice(&data[i..next]);
            if kind == b"VP8X" && out.len() > at + 8 {
                // Flags: bit 3 EXIF, bit 2 XMP.
                out[at + 8] &= !0b0000_1100;
            }
        }
        i = next;
    }
    let size = u32::try_from(out.len() - 8).map_err(|_| StripError::Malformed("too large"))?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn seg(marker: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, marker];
        v.extend_from_slice(&u16::try_from(body.len() + 2).unwrap().to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn exif_with(orientation: u16, secret: &[u8]) -> Vec<u8> {
        let mut b = b"Exif\0\0II*\0".to_vec();
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&0x0112u16.to_le_bytes());
        b.extend_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&orientation.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(secret);
        b
    }

    #[test]
    fn jpeg_loses_metadata_but_keeps_picture_and_orientation() {
        let mut j = vec![0xFF, SOI];
        j.extend(seg(APP0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"));
        j.extend(seg(APP1, &exif_with(6, b"GPS 38.9N 125.7E")));
        j.extend(seg(
            APP1,
            b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>secret</x:xmpmeta>",
        ));
        j.extend(seg(0xED, b"Photoshop 3.0\0secret"));
        j.extend(seg(COM, b"secret comment"));
        j.extend(seg(APP2, b"ICC_PROFILE\0\x01\x01colour"));
        j.extend(seg(0xDB, &[0; 65]));
        j.extend(seg(0xC0, &[8, 0, 1, 0, 1, 1, 1, 0x11, 0]));
        j.extend(seg(SOS, &[1, 1, 0, 0, 0x3F, 0]));
        j.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56]);
        j.extend_from_slice(&[0xFF, EOI]);
        j.extend_from_slice(b"trailer with secret");
        let out = strip_jpeg(&j).unwrap();
        let hay = String::from_utf8_lossy(&out);
        assert!(!hay.contains("secret"), "{hay}");
        assert!(!hay.contains("GPS"), "{hay}");
        assert!(hay.contains("JFIF") && hay.contains("ICC_PROFILE"));
        assert_eq!(exif_orientation(&orientation_block(6)[4..]), Some(6));
        assert!(out.windows(2).filter(|w| w == &[0xFF, APP1]).count() == 1);
        assert!(out.ends_with(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, EOI]));
        // Cleaning twice changes nothing more.
        assert_eq!(strip_jpeg(&out).unwrap(), out);
    }

    #[test]
    fn damaged_images_are_refused_without_panicking() {
        assert!(strip_jpeg(b"\xFF\xD8\xFF\xE1\xFF\xFF").is_err());
        assert!(strip_jpeg(b"\xFF\xD8").is_err());
        assert!(strip_png(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR").is_err());
        assert!(strip_webp(b"RIFF\xff\xff\xff\xffWEBP").is_err());
        for n in 0..64 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
            let _ = strip_jpeg(&[&[0xFF, SOI][..], &junk].concat());
            let _ = strip_png(&[&b"\x89PNG\r\n\x1a\n"[..], &junk].concat());
            let _ = strip_webp(&[&b"RIFF\x10\0\0\0WEBP"[..], &junk].concat());
        }
    }

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(data);
        v.extend_from_slice(&[0; 4]);
        v
    }

    #[test]
    fn png_keeps_pixels_and_colour_only() {
        let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
        p.extend(chunk(b"IHDR", &[0; 13]));
        p.extend(chunk(b"tEXt", b"Comment\0secret"));
        p.extend(chunk(b"eXIf", b"MM\0*secret"));
        p.extend(chunk(b"tIME", &[7; 7]));
        p.extend(chunk(b"gAMA", &[0; 4]));
        p.extend(chunk(b"IDAT", b"pixels"));
        p.extend(chunk(b"IEND", b""));
        let out = strip_png(&p).unwrap();
        let hay = String::from_utf8_lossy(&out);
        assert!(!hay.contains("secret") && !hay.contains("tIME"));
        assert!(hay.contains("IHDR") && hay.contains("gAMA") && hay.contains("pixels"));
    }

    #[test]
    fn webp_loses_exif_and_xmp() {
        let mut body = b"WEBP".to_vec();
        let mut ch = |kind: &[u8], data: &[u8]| {
            body.extend_from_slice(kind);
            body.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
            body.extend_from_slice(data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        };
        ch(b"VP8X", &[0b0000_1100, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ch(b"VP8L", b"pixel");
        ch(b"EXIF", b"secret gps");
        ch(b"XMP ", b"secret xmp");
        let mut w = b"RIFF".to_vec();
        w.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        w.extend_from_slice(&body);
        let out = strip_webp(&w).unwrap();
        assert!(!String::from_utf8_lossy(&out).contains("secret"));
        assert_eq!(out[20] & 0b1100, 0);
        let size = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize;
        assert_eq!(size + 8, out.len());
    }
}
