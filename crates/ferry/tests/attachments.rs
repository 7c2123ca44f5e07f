//! End-to-end tests of attachments: real relay, real binaries, real files,
//! a flaky link (a proxy that cuts connections) and relay kills.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ferry_testkit::RelayProcess;
use ferry_testkit::proxy::{CutProxy, Direction};

mod common;
use common::*;

const MIB: u64 = 1024 * 1024;
/// One sealed segment (64 KiB + tag): the most a cut download repeats.
const SEALED_SEGMENT: u64 = 64 * 1024 + 16;
/// One upload part (64 sealed segments): the most a cut upload repeats.
const PART: u64 = 64 * SEALED_SEGMENT;

/// Writes `size` bytes of a position-dependent pattern (xorshift).
fn write_pattern(path: &Path, size: u64, seed: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut left = size;
    let mut buf = vec![0u8; MIB as usize];
    while left > 0 {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(MIB) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

fn same_files(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Runs `cmd` while `during` watches; returns the run.
fn run_while(
    user: &User,
    args: &[&str],
    mut during: impl FnMut(&mut std::process::Child) -> bool,
) -> Run {
    let mut c = user.cmd(args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if !during(&mut child) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The id of the last attachment message in a run's output.
fn attachment_id(r: &Run) -> (String, serde_json::Value) {
    let m = r
        .of_type("message")
        .into_iter()
        .rfind(|m| m.get("attachment").is_some())
        .unwrap_or_else(|| panic!("no attachment in {:?}", r.lines));
    (
        m["id"].as_str().unwrap().to_owned(),
        m["attachment"].clone(),
    )
}

fn blob_files(relay: &RelayProcess) -> Vec<PathBuf> {
    std::fs::read_dir(relay.data_dir().join("blobs"))
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_none())
                .collect()
        })
        .unwrap_or_default()
}

fn part_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".ferry-part"))
        .collect()
}

fn num(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_300_mb_file_arrives_identical_through_cut_connections_and_relay_kills() {
    let relay = RelayProcess::start(bin(), &[]).unwrap();
    let proxy = CutProxy::start(relay.port()).unwrap();
    let url = proxy.url();
    let mut w = world_at(relay, &url);
    let size = 300 * MIB;
    let src = w.dir.path().join("video.mp4");
    write_pattern(&src, size, 0x5eed);

    // Upload: two cut connections, then the relay is killed and restarted.
    let base = proxy.forwarded(Direction::Up);
    proxy.cut_at(Direction::Up, base + 40 * MIB);
    proxy.cut_at(Direction::Up, base + 120 * MIB);
    let mut killed = false;
    let relay = &mut w.relay;
    let up = run_while(
        &w.a,
        &["send-file", "Bashir", src.to_str().unwrap()],
        |_| {
            if !killed && proxy.forwarded(Direction::Up) >= base + 200 * MIB {
                relay.kill9().unwrap();
                std::thread::sleep(Duration::from_millis(300));
                relay.restart().unwrap();
                killed = true;
            }
            false
        },
    );
    assert_eq!(up.code, 0, "{:?} {}", up.lines, up.stderr);
    assert!(killed, "the relay was never killed during the upload");
    let stats = up.of_type("uploaded")[0].clone();
    let (blob, wire, resumes) = (
        num(&stats["blob_bytes"]),
        num(&stats["wire_bytes"]),
        num(&stats["resumes"]),
    );
    assert!(resumes >= 3, "{stats}");
    assert_eq!(up.of_type("resumed").len() as u64, resumes);
    assert!(
        wire - blob <= resumes * PART,
        "re-sent {} bytes over {resumes} resumes",
        wire - blob
    );
    // Padmé: the relay sees a padded size, not the file's.
    assert!(blob > size && blob < size + size / 8, "{blob}");
    assert!(up.of_type("progress").len() >= 3);

    // B learns of it; the listing never shows the key, token or blob id.
    let r = w.b.run(&["sync"]);
    let (id, att) = attachment_id(&r);
    assert_eq!(att["name"], "video.mp4");
    assert_eq!(att["size"], size);
    assert_eq!(att["mime"], "video/mp4");
    assert_eq!(att["kind"], "file");
    assert_eq!(
        att.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["duration_ms", "kind", "mime", "name", "size"]
    );

    // Download: two cuts and a relay kill.
    let out = w.dir.path().join("received.mp4");
    let base = proxy.forwarded(Direction::Down);
    proxy.cut_at(Direction::Down, base + 60 * MIB);
    proxy.cut_at(Direction::Down, base + 150 * MIB);
    let mut killed = false;
    let relay = &mut w.relay;
    let down = run_while(&w.b, &["save", "Amina", &id, out.to_str().unwrap()], |_| {
        if !killed && proxy.forwarded(Direction::Down) >= base + 230 * MIB {
            relay.kill9().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            relay.restart().unwrap();
            killed = true;
        }
        false
    });
    assert_eq!(down.code, 0, "{:?} {}", down.lines, down.stderr);
    assert!(killed, "the relay was never killed during the download");
    let stats = down.of_type("saved")[0].clone();
    let (wire, resumes) = (num(&stats["wire_bytes"]), num(&stats["resumes"]));
    assert!(resumes >= 3, "{stats}");
    assert!(
        wire - blob <= resumes * SEALED_SEGMENT,
        "downloaded {} bytes twice over {resumes} resumes",
        wire - blob
    );
    assert!(same_files(&src, &out), "received file differs");
    assert!(part_files(w.dir.path()).is_empty());
    // Saving again never overwrites.
    let again = w.b.try_run(&["save", "Amina", &id, out.to_str().unwrap()]);
    assert_eq!(again.error_code().as_deref(), Some("destination_exists"));
}

/// A save cut short leaves decrypted bytes on disk to resume from: they are
/// readable by the owner only, and they go when their message goes.
#[test]
fn a_partial_download_is_private_and_goes_with_its_message() {
    let relay = RelayProcess::start(bin(), &[]).unwrap();
    let proxy = CutProxy::start(relay.port()).unwrap();
    let url = proxy.url();
    let w = world_at(relay, &url);
    let src = w.dir.path().join("clip.mp4");
    write_pattern(&src, 40 * MIB, 3);
    w.a.run(&["send-file", "Bashir", src.to_str().unwrap()]);
    let (id, _) = attachment_id(&w.b.run(&["sync"]));
    // The phone dies in the middle of the save.
    let out = w.dir.path().join("clip-saved.mp4");
    let base = proxy.forwarded(Direction::Down);
    let down = run_while(
        &w.b,
        &["save", "Amina", &id, out.to_str().unwrap()],
        |child| {
            if proxy.forwarded(Direction::Down) >= base + 8 * MIB {
                let _ = child.kill();
                return true;
            }
            false
        },
    );
    assert_ne!(down.code, 0, "the save was meant to be cut short");
    let parts = part_files(w.dir.path());
    assert_eq!(parts.len(), 1, "a partial file to resume from");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&parts[0]).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "only the owner may read decrypted bytes"
        );
    }
    // The sender deletes the message for both: the partial file goes with
    // it at the receiver's next command.
    w.a.run(&["delete", "Bashir", &id]);
    w.b.run(&["sync"]);
    w.b.run(&["contacts"]);
    assert!(
        part_files(w.dir.path()).is_empty(),
        "the partial file outlived its message"
    );
    assert!(!out.exists());
}

#[test]
fn a_tampered_chunk_is_refused_and_nothing_is_saved() {
    let w = world();
    let src = w.dir.path().join("photo.jpg");
    write_pattern(&src, 3 * MIB + 123, 7);
    w.a.run(&["send-file", "Bashir", src.to_str().unwrap()]);
    let (id, _) = attachment_id(&w.b.run(&["sync"]));
    let blobs = blob_files(&w.relay);
    assert_eq!(blobs.len(), 1);
    let flip = |path: &Path| {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[2 * MIB as usize + 17] ^= 0x40;
        std::fs::write(path, bytes).unwrap();
    };
    flip(&blobs[0]);
    let out = w.dir.path().join("saved.jpg");
    let r = w.b.try_run(&["save", "Amina", &id, out.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert_eq!(r.error_code().as_deref(), Some("attachment_tampered"));
    let msg = r.of_type("error")[0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("changed"), "{msg}");
    assert!(!out.exists(), "a tampered attachment must not be saved");
    assert!(
        part_files(w.dir.path()).is_empty(),
        "partial plaintext left"
    );
    // Nothing was lost: once the relay's copy is intact again it saves.
    flip(&blobs[0]);
    w.b.run(&["save", "Amina", &id, out.to_str().unwrap()]);
    assert!(same_files(&src, &out));
}

#[test]
fn a_file_above_the_relay_limit_gets_a_clear_error_and_uploads_nothing() {
    let w = world_on(&[
        "--max-blob-size",
        "1000000",
        "--max-blob-storage",
        "2000000",
    ]);
    let src = w.dir.path().join("big.bin");
    write_pattern(&src, 2 * MIB, 1);
    let r = w.a.try_run(&["send-file", "Bashir", src.to_str().unwrap()]);
    assert_eq!(
        r.error_code().as_deref(),
        Some("file_too_large"),
        "{:?}",
        r.lines
    );
    let msg = r.of_type("error")[0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("accepts attachments up to"), "{msg}");
    assert!(blob_files(&w.relay).is_empty());
    assert!(w.b.run(&["sync"]).of_type("message").is_empty());
    // A file under the limit goes through.
    let small = w.dir.path().join("small.bin");
    write_pattern(&small, 900_000, 2);
    w.a.run(&["send-file", "Bashir", small.to_str().unwrap()]);
    assert_eq!(attachment_id(&w.b.run(&["sync"])).1["size"], 900_000);
    // The relay's total storage budget (2 MB here) fits two such blobs.
    w.a.run(&["send-file", "Bashir", small.to_str().unwrap()]);
    let r =
        w.a.try_run(&["send-file", "Bashir", small.to_str().unwrap()]);
    assert_eq!(
        r.error_code().as_deref(),
        Some("relay_full"),
        "{:?}",
        r.lines
    );
    assert_eq!(blob_files(&w.relay).len(), 2);
}

/// A 16-bit mono WAV of a sine tone.
fn sine_wav(path: &Path, hz: f64, secs: f64, rate: u32) {
    let n = (secs * f64::from(rate)) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + n * 2).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(n * 2).to_le_bytes());
    for i in 0..n {
        let t = f64::from(i) / f64::from(rate);
        let s = (t * hz * std::f64::consts::TAU).sin() * 12_000.0;
        b.extend_from_slice(&(s as i16).to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

/// Samples (first channel) of a 16-bit PCM WAV, and its rate.
fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let b = std::fs::read(path).unwrap();
    let mut at = 12;
    let (mut rate, mut channels, mut samples) = (0, 1, Vec::new());
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &b[at + 8..(at + 8 + len).min(b.len())];
        if id == b"fmt " {
            channels = u16::from_le_bytes(body[2..4].try_into().unwrap()) as usize;
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            samples = body
                .chunks_exact(2 * channels)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect();
        }
        at += 8 + len + (len & 1);
    }
    (samples, rate)
}

#[test]
fn a_voice_message_round_trips_wav_to_opus_and_decodes_with_opusdec() {
    let w = world();
    let wav = w.dir.path().join("note.wav");
    sine_wav(&wav, 440.0, 2.0, 44_100);
    let sent = w.a.run(&["send-voice", "Bashir", wav.to_str().unwrap()]);
    let (_, att) = attachment_id(&sent);
    assert_eq!(att["kind"], "voice");
    assert_eq!(att["name"], "note.ogg");
    let (id, att) = attachment_id(&w.b.run(&["sync"]));
    assert_eq!(att["kind"], "voice");
    assert_eq!(att["mime"], "audio/ogg");
    let ms = num(&att["duration_ms"]);
    assert!((1950..=2050).contains(&ms), "{ms}");
    assert!(
        num(&att["size"]) < 20_000,
        "2 s of voice should be a few KB of Opus"
    );
    let ogg = w.dir.path().join("note.ogg");
    w.b.run(&["save", "Amina", &id, ogg.to_str().unwrap()]);

    // A third-party decoder reads it: 2 s of a 440 Hz tone.
    let decoded = w.dir.path().join("decoded.wav");
    let st = std::process::Command::new("opusdec")
        .args(["--quiet", "--rate", "48000"])
        .arg(&ogg)
        .arg(&decoded)
        .status()
        .expect("opusdec (Debian package opus-tools, installed by .ci/run)");
    assert!(st.success());
    let (samples, rate) = read_wav(&decoded);
    assert_eq!(rate, 48_000);
    let secs = samples.len() as f64 / f64::from(rate);
    assert!((1.95..=2.05).contains(&secs), "{secs} s");
    let crossings = samples
        .windows(2)
        .filter(|p| (p[0] < 0) != (p[1] < 0))
        .count();
    let hz = crossings as f64 / 2.0 / secs;
    assert!((420.0..=460.0).contains(&hz), "{hz} Hz");

    // Ogg/Opus is sent as it is: B forwards the note, A gets the same bytes.
    w.b.run(&["send-voice", "Amina", ogg.to_str().unwrap()]);
    let (id, _) = attachment_id(&w.a.run(&["sync"]));
    let back = w.dir.path().join("back.ogg");
    w.a.run(&["save", "Bashir", &id, back.to_str().unwrap()]);
    assert!(same_files(&ogg, &back));

    // Something else is refused clearly.
    let text = w.dir.path().join("notes.txt");
    std::fs::write(&text, "not audio at all").unwrap();
    let r =
        w.a.try_run(&["send-voice", "Bashir", text.to_str().unwrap()]);
    assert_eq!(r.error_code().as_deref(), Some("not_voice"));
}

#[test]
fn view_once_timer_and_crashes_mid_upload_and_mid_save() {
    let w = world();
    let dir = w.dir.path();

    // View once: saved once, then gone here and at the relay.
    let src = dir.join("once.png");
    write_pattern(&src, 200_000, 3);
    let sent =
        w.a.run(&["send-file", "--view-once", "Bashir", src.to_str().unwrap()]);
    assert!(attachment_id(&sent).0.len() > 4);
    assert!(
        w.a.run(&["history", "Bashir"])
            .of_type("message")
            .is_empty()
    );
    let (id, _) = attachment_id(&w.b.run(&["sync"]));
    // Listing the history does not destroy it; saving does.
    assert_eq!(w.b.run(&["history", "Amina"]).of_type("message").len(), 1);
    let out = dir.join("once-saved.png");
    let r = w.b.run(&["save", "Amina", &id, out.to_str().unwrap()]);
    assert_eq!(r.of_type("saved")[0]["destroyed"], true);
    assert!(same_files(&src, &out));
    let again =
        w.b.try_run(&["save", "Amina", &id, dir.join("x").to_str().unwrap()]);
    assert_eq!(again.error_code().as_deref(), Some("no_attachment"));
    assert!(blob_files(&w.relay).is_empty(), "the relay still has it");

    // The timer: the attachment's key goes with its message.
    w.a.run(&["timer", "Bashir", "2s"]);
    w.b.run(&["sync"]);
    let src = dir.join("timed.bin");
    write_pattern(&src, 100_000, 4);
    w.a.run(&["send-file", "Bashir", src.to_str().unwrap()]);
    let (id, _) = attachment_id(&w.b.run(&["sync"]));
    std::thread::sleep(Duration::from_secs(3));
    let r =
        w.b.try_run(&["save", "Amina", &id, dir.join("late.bin").to_str().unwrap()]);
    assert_eq!(r.error_code().as_deref(), Some("no_attachment"));
    // Off again, on each device (each keeps the shorter of the two).
    w.a.run(&["timer", "Bashir", "off"]);
    w.b.run(&["timer", "Amina", "off"]);
    w.b.run(&["sync"]);
    w.a.run(&["sync"]);

    // The sender dies after two parts; the next sync finishes the upload
    // from where the relay stands and sends the message.
    let before = blob_files(&w.relay);
    let src = dir.join("long.mov");
    write_pattern(&src, 20 * MIB, 5);
    let mut c = w.a.cmd(&["send-file", "Bashir", src.to_str().unwrap()]);
    c.env("FERRY_FAULT_EXIT_AFTER_PARTS", "2");
    let r = User::run_cmd(c);
    assert_eq!(r.code, 75, "{:?} {}", r.lines, r.stderr);
    // (The expired message's blob stays until the relay's own expiry.)
    let blobs: Vec<PathBuf> = blob_files(&w.relay)
        .into_iter()
        .filter(|b| !before.contains(b))
        .collect();
    assert_eq!(blobs.len(), 1);
    assert_eq!(std::fs::metadata(&blobs[0]).unwrap().len(), 2 * PART);
    assert!(w.b.run(&["sync"]).of_type("message").is_empty());
    w.a.run(&["sync"]);
    let (id, att) = attachment_id(&w.b.run(&["sync"]));
    assert_eq!(att["name"], "long.mov");
    let out = dir.join("long-saved.mov");
    w.b.run(&["save", "Amina", &id, out.to_str().unwrap()]);
    assert!(same_files(&src, &out));

    // The receiver dies mid-save; the same command resumes from the
    // partial file and downloads only what is missing (plus at most one
    // segment).
    let out = dir.join("long-again.mov");
    let mut c = w.b.cmd(&["save", "Amina", &id, out.to_str().unwrap()]);
    c.env("FERRY_FAULT_EXIT_AFTER_SEGMENTS", "100");
    assert_eq!(User::run_cmd(c).code, 75);
    assert!(!out.exists());
    assert_eq!(part_files(dir).len(), 1);
    let r = w.b.run(&["save", "Amina", &id, out.to_str().unwrap()]);
    let stats = &r.of_type("saved")[0];
    let (blob, wire) = (num(&stats["blob_bytes"]), num(&stats["wire_bytes"]));
    assert!(
        wire <= blob - 100 * SEALED_SEGMENT + SEALED_SEGMENT,
        "downloaded {wire} of {blob} after 100 segments were saved"
    );
    assert!(same_files(&src, &out));
    assert!(part_files(dir).is_empty());

    // Killed after its only (last) part, before the message was queued:
    // the relay has it all, so the next sync only recomputes the digest.
    let src = dir.join("short.bin");
    write_pattern(&src, 1_000_000, 6);
    let mut c = w.a.cmd(&["send-file", "Bashir", src.to_str().unwrap()]);
    c.env("FERRY_FAULT_EXIT_AFTER_PARTS", "1");
    assert_eq!(User::run_cmd(c).code, 75);
    w.a.run(&["sync"]);
    let (id, att) = attachment_id(&w.b.run(&["sync"]));
    assert_eq!(att["name"], "short.bin");
    let out = dir.join("short-saved.bin");
    w.b.run(&["save", "Amina", &id, out.to_str().unwrap()]);
    assert!(same_files(&src, &out));
}

#[test]
fn a_contact_on_another_relay_can_send_files_to_a_private_relay_user() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "a-long-private-relay-token\n").unwrap();
    let private =
        RelayProcess::start(bin(), &["--access-token-file", token.to_str().unwrap()]).unwrap();
    let public = RelayProcess::start(bin(), &[]).unwrap();
    let member = User::new(dir.path(), "member");
    member.run(&[
        "init",
        "--relay",
        private.url(),
        "--relay-token-file",
        token.to_str().unwrap(),
    ]);
    let friend = User::new(dir.path(), "friend");
    friend.run(&["init", "--relay", public.url()]);
    let link = member.invite("Friend");
    friend.run(&["accept", &link, "--alias", "Member"]);
    member.run(&["sync"]);
    friend.run(&["sync"]);

    // The friend has no token for the private relay: the sender key of
    // the member's mailbox there authorizes the upload.
    let src = dir.path().join("scan.pdf");
    write_pattern(&src, 700_000, 9);
    friend.run(&["send-file", "Member", src.to_str().unwrap()]);
    assert_eq!(blob_files(&private).len(), 1);
    let (id, _) = attachment_id(&member.run(&["sync"]));
    let out = dir.path().join("scan-saved.pdf");
    member.run(&["save", "Friend", &id, out.to_str().unwrap()]);
    assert!(same_files(&src, &out));

    // Strangers still cannot store anything there.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = ferry_client::transfer::BlobClient::new(private.url()).unwrap();
    let stranger = ferry_proto::MailboxKey::generate(&mut rand_core::OsRng);
    for signer in [
        None,
        Some((
            ferry_proto::MailboxId::random(&mut rand_core::OsRng),
            &stranger,
        )),
    ] {
        let e = rt.block_on(client.create(1000, signer)).unwrap_err();
        assert_eq!(
            e.code(),
            Some(ferry_proto::ErrorCode::AccessTokenRequired),
            "{e}"
        );
    }
    assert_eq!(blob_files(&private).len(), 1);
}
