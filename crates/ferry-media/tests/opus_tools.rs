//! The reference tools (opus-tools, installed by `.ci/run`) accept what we
//! encode: `opusinfo` finds no stream error and the right length, and
//! `opusdec` plays back exactly the recorded samples.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::f32::consts::TAU;
use std::io::Cursor;
use std::process::Command;

use ferry_media::wav_to_ogg_opus;
use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

/// Two seconds of 440 Hz at 44.1 kHz, 16-bit mono: the rate a laptop
/// microphone records at, which we resample.
fn recording() -> Vec<u8> {
    let spec = WavSpec {
        channels: 1,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: SampleFormat::Int,
    };
    let mut wav = Vec::new();
    let mut writer = WavWriter::new(Cursor::new(&mut wav), spec).unwrap();
    for i in 0..88_200 {
        let x = 0.5 * (TAU * 440.0 * i as f32 / 44_100.0).sin();
        writer.write_sample((x * 32767.0) as i16).unwrap();
    }
    writer.finalize().unwrap();
    wav
}

fn run(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} not found ({e}); install opus-tools"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} failed:\n{text}");
    text
}

#[test]
fn opus_tools_accept_a_voice_note() {
    let dir = tempfile::tempdir().unwrap();
    let note = wav_to_ogg_opus(recording().as_slice()).unwrap();
    let opus = dir.path().join("note.opus");
    std::fs::write(&opus, &note.ogg).unwrap();

    let info = run("opusinfo", &[opus.as_os_str()]);
    assert!(!info.contains("WARNING"), "{info}");
    for expected in [
        "Pre-skip: 312",
        "Channels: 1",
        "Original sample rate: 44100 Hz",
        "Packet duration:   20.0ms (max)",
        "Playback length: 0m:02.000s",
    ] {
        assert!(info.contains(expected), "no {expected:?} in:\n{info}");
    }

    // opusdec resamples to the original rate recorded in OpusHead and trims
    // pre-skip and end padding: the same number of samples comes back.
    let wav = dir.path().join("back.wav");
    run(
        "opusdec",
        &[
            std::ffi::OsStr::new("--quiet"),
            opus.as_os_str(),
            wav.as_os_str(),
        ],
    );
    let back = WavReader::open(&wav).unwrap();
    assert_eq!(back.spec().sample_rate, 44_100);
    assert_eq!(back.spec().channels, 1);
    let frames = i64::from(back.duration());
    assert!((frames - 88_200).abs() <= 2, "{frames} samples decoded");
}
