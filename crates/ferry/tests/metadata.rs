//! Photos and videos lose their location, dates and camera details before
//! they leave the phone, checked with the tools an investigator would use:
//! exiftool plants GPS tags in a real JPEG (made by cjpeg) and MP4, and
//! finds none in what the contact saves; djpeg still decodes the photo.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;

use common::world;

fn tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What exiftool reads of `path`: every tag, group-prefixed.
fn tags(path: &Path) -> String {
    tool(Command::new("exiftool").args(["-a", "-G1", "-s"]).arg(path))
}

/// A 16×16 JPEG from cjpeg, with GPS, camera and orientation planted.
fn photo(dir: &Path) -> std::path::PathBuf {
    let ppm = dir.join("p.ppm");
    let mut bytes = b"P6\n16 16\n255\n".to_vec();
    bytes.extend((0..16 * 16 * 3).map(|i| (i * 7 % 256) as u8));
    std::fs::write(&ppm, bytes).unwrap();
    let jpg = dir.join("IMG_20261127_101500.jpg");
    let out = Command::new("cjpeg").arg(&ppm).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&jpg, out.stdout).unwrap();
    tool(
        Command::new("exiftool")
            .args([
                "-overwrite_original",
                "-GPSLatitude=37.5665",
                "-GPSLatitudeRef=N",
                "-GPSLongitude=126.978",
                "-GPSLongitudeRef=E",
                "-Make=Samsung",
                "-Model=SM-A125",
                "-DateTimeOriginal=2026:11:27 10:15:00",
                "-Comment=taken at the river",
                "-Orientation#=6",
            ])
            .arg(&jpg),
    );
    jpg
}

fn bx(kind: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len() + 8)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// An MP4 with GPS coordinates and dates planted by exiftool.
fn video(dir: &Path) -> std::path::PathBuf {
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
    mvhd[20..24].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    mvhd[24..26].copy_from_slice(&0x0100u16.to_be_bytes());
    mvhd[96..100].copy_from_slice(&2u32.to_be_bytes());
    let file = [
        bx(b"ftyp", b"isom\0\0\0\0isommp41"),
        bx(b"moov", &bx(b"mvhd", &mvhd)),
        bx(b"mdat", b"FRAMES OF THE VIDEO"),
    ]
    .concat();
    let path = dir.join("VID_20261127_101500.mp4");
    std::fs::write(&path, file).unwrap();
    tool(
        Command::new("exiftool")
            .args([
                "-overwrite_original",
                "-GPSCoordinates=37.5665, 126.978",
                "-CreateDate=2026:11:27 10:15:00",
                "-Make=Samsung",
            ])
            .arg(&path),
    );
    path
}

/// Sends `src` from A to B and returns (listing of the attachment, saved path).
fn send_and_save(
    w: &common::World,
    src: &Path,
    extra: &[&str],
    out: &Path,
) -> (serde_json::Value, std::path::PathBuf) {
    let mut args = vec!["send-file", "Bashir", src.to_str().unwrap()];
    args.extend_from_slice(extra);
    w.a.run(&args);
    let r = w.b.run(&["sync"]);
    let m = r
        .of_type("message")
        .into_iter()
        .last()
        .expect("no message")
        .clone();
    let id = m["id"].as_str().unwrap().to_owned();
    std::fs::create_dir_all(out).unwrap();
    w.b.run(&["save", "Amina", &id, out.to_str().unwrap()]);
    let name = m["attachment"]["name"].as_str().unwrap();
    (m["attachment"].clone(), out.join(name))
}

#[test]
fn photos_and_videos_leave_without_location_dates_or_camera() {
    let w = world();
    let dir = w.dir.path().join("media");
    std::fs::create_dir_all(&dir).unwrap();
    let jpg = photo(&dir);
    let before = tags(&jpg);
    assert!(
        before.contains("GPSLatitude") && before.contains("Samsung"),
        "{before}"
    );

    let (att, saved) = send_and_save(&w, &jpg, &[], &dir.join("got-photo"));
    assert_eq!(att["name"], "photo.jpg", "the file name dates the photo");
    let after = tags(&saved);
    for leak in ["GPS", "Samsung", "SM-A125", "2026:11:27 10:15", "river"] {
        assert!(!after.contains(leak), "{leak} survived:\n{after}");
    }
    // Still a picture, still the right way up.
    assert!(after.contains("Rotate 90 CW"), "{after}");
    tool(Command::new("djpeg").arg(&saved));

    let mp4 = video(&dir);
    let before = tags(&mp4);
    assert!(before.contains("GPSCoordinates"), "{before}");
    let (att, saved) = send_and_save(&w, &mp4, &[], &dir.join("got-video"));
    assert_eq!(att["name"], "video.mp4");
    let after = tags(&saved);
    for leak in ["GPS", "Samsung", "2026:11:27 10:15"] {
        assert!(!after.contains(leak), "{leak} survived:\n{after}");
    }
    assert!(!after.contains("Warning"), "{after}");
    let original = std::fs::read(&mp4).unwrap();
    let received = std::fs::read(&saved).unwrap();
    assert_eq!(original.len(), received.len(), "nothing moved");
    assert!(
        received.windows(19).any(|w| w == b"FRAMES OF THE VIDEO"),
        "the frames are intact"
    );

    // Asked for explicitly, it goes as it is.
    let (att, saved) = send_and_save(&w, &jpg, &["--keep-metadata"], &dir.join("got-as-is"));
    assert_eq!(att["name"], "IMG_20261127_101500.jpg");
    assert!(tags(&saved).contains("GPSLatitude"));

    // A format Ferry cannot clean is refused, not sent with its location.
    let heic = dir.join("IMG_1.heic");
    std::fs::write(
        &heic,
        [&bx(b"ftyp", b"heic\0\0\0\0mif1heic")[..], &[0; 64]].concat(),
    )
    .unwrap();
    let r =
        w.a.try_run(&["send-file", "Bashir", heic.to_str().unwrap()]);
    assert_eq!(r.error_code().as_deref(), Some("metadata"), "{:?}", r.lines);
}
