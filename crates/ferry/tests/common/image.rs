//! A loop-mounted ext4 image: the "phone" whose raw blocks a test scans
//! after a profile is gone, as a forensic tool would.

use std::path::{Path, PathBuf};
use std::process::Command;

/// An ext4 file system in a file, loop-mounted: the "phone" whose raw
/// blocks are scanned after the profile is gone.
pub struct Image {
    pub file: PathBuf,
    pub mnt: PathBuf,
    mounted: bool,
}

impl Image {
    pub fn new(dir: &Path) -> Self {
        let file = dir.join("phone.img");
        let mnt = dir.join("phone");
        std::fs::create_dir_all(&mnt).unwrap();
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(96 * 1024 * 1024).unwrap();
        drop(f);
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&file)
            .status()
            .unwrap();
        assert!(ok.success(), "mkfs.ext4");
        let mut img = Self {
            file,
            mnt,
            mounted: false,
        };
        img.mount();
        img
    }

    pub fn mount(&mut self) {
        let ok = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&self.file)
            .arg(&self.mnt)
            .status()
            .unwrap();
        assert!(ok.success(), "mount -o loop (the test runs as root)");
        self.mounted = true;
    }

    pub fn unmount(&mut self) {
        let ok = Command::new("umount").arg(&self.mnt).status().unwrap();
        assert!(ok.success(), "umount");
        self.mounted = false;
    }

    /// How many of `needles` (samples taken at 4 KiB boundaries of the
    /// profile's files) occur at any 512-byte boundary of the raw image,
    /// where a file system puts file data.
    pub fn found(&self, needles: &[Vec<u8>]) -> usize {
        let raw = std::fs::read(&self.file).unwrap();
        let set: std::collections::HashSet<&[u8]> = needles.iter().map(Vec::as_slice).collect();
        let mut hits = std::collections::HashSet::new();
        for at in (0..raw.len().saturating_sub(SAMPLE)).step_by(512) {
            let w = &raw[at..at + SAMPLE];
            if set.contains(w) {
                hits.insert(w);
            }
        }
        hits.len()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.mnt).status();
        }
    }
}

pub const SAMPLE: usize = 48;

/// Samples of every file of a profile, at 4 KiB boundaries: its salts, key
/// slab entries and pages, all ciphertext or random, so any hit in the
/// image is a leftover of this profile.
pub fn samples(home: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, bytes) in super::snapshot(home) {
        let mut at = 0;
        while at + SAMPLE <= bytes.len() {
            out.push(bytes[at..at + SAMPLE].to_vec());
            at += 4096;
        }
    }
    out.sort();
    out.dedup();
    out
}
