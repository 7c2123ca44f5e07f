//! Attachment throughput and memory: uploads and downloads one file
//! through a real relay process on loopback and prints MB/s and the peak
//! RSS of both sides.
//!
//! `cargo bench -p ferry --bench attachments -- [--size-mib 1024] [--tmpfs]`
//!
//! The client side is this process (it runs only the transfer code, as the
//! CLI does after unlocking); the relay is the real `ferry relay` binary.
//! By default the relay's data directory is on the disk under TMPDIR (every
//! part is fsynced); `--tmpfs` puts everything in /dev/shm to measure the
//! software without the disk. Peak RSS (VmHWM) is reset between phases
//! through /proc/PID/clear_refs. `--no-fsync` runs the relay without
//! fsync. The storage ceiling printed first is this machine writing a new
//! file of the same size in the relay's data directory: on these VMs
//! allocating fresh page-cache pages, not crypto, bounds both directions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use ferry_client::transfer::{self, BlobClient, RetryPolicy, Source};
use ferry_core::KeyBytes;
use ferry_core::attachment::{AttachmentKind, AttachmentRef};
use ferry_testkit::RelayProcess;
use rand_core::OsRng;

fn hwm_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn reset_hwm(pid: &str) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn write_file(path: &Path, size: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for w in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size_mib: u64 = args
        .iter()
        .position(|a| a == "--size-mib")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    if args.iter().any(|a| a == "--tmpfs") {
        reexec_on_tmpfs();
    }
    let size = size_mib << 20;
    let no_fsync = args.iter().any(|a| a == "--no-fsync");
    let relay_args: &[&str] = if no_fsync { &["--no-fsync"] } else { &[] };
    let relay = RelayProcess::start(Path::new(env!("CARGO_BIN_EXE_ferry")), relay_args).unwrap();
    let rpid = relay.pid().unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("input.bin");
    write_file(&src, size);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = BlobClient::new(relay.url()).unwrap();
    let source = Source::file(&src).unwrap();
    let layout = ferry_core::attachment::Layout::new(size).unwrap();
    let key = KeyBytes::random(&mut OsRng);

    reset_hwm("self");
    reset_hwm(&rpid);
    let t = Instant::now();
    let (blob, token) = rt.block_on(client.create(layout.blob_len(), None)).unwrap();
    let (digest, stats) = rt
        .block_on(transfer::upload(
            &client,
            blob,
            &key,
            &source,
            RetryPolicy::default(),
            &mut |_| {},
        ))
        .unwrap();
    let up = t.elapsed().as_secs_f64();
    let (up_client, up_relay) = (hwm_kib("self"), hwm_kib(&rpid));
    assert_eq!(stats.wire_bytes, layout.blob_len());

    let a = AttachmentRef {
        relay: relay.url().to_owned(),
        blob,
        token,
        key,
        size,
        digest: digest.to_vec(),
        name: "input.bin".into(),
        mime: None,
        kind: AttachmentKind::File,
        duration_ms: None,
    };
    let out = work.path().join("output.bin");
    reset_hwm("self");
    reset_hwm(&rpid);
    let t = Instant::now();
    rt.block_on(transfer::download(
        &client,
        &a,
        &out,
        RetryPolicy::default(),
        &mut |_| {},
    ))
    .unwrap();
    let down = t.elapsed().as_secs_f64();
    let (down_client, down_relay) = (hwm_kib("self"), hwm_kib(&rpid));
    assert_eq!(std::fs::metadata(&out).unwrap().len(), size);

    // The storage ceiling: this machine writing a new file of the same size
    // where the relay keeps blobs, the same way (fsync per 4 MiB part).
    let ceiling = {
        let path = relay.data_dir().join("ceiling.bin");
        let mut f = std::fs::File::create(&path).unwrap();
        let buf = vec![7u8; 4 << 20];
        let t = Instant::now();
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n]).unwrap();
            if !no_fsync {
                f.sync_data().unwrap();
            }
            left -= n as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        std::fs::remove_file(&path).unwrap();
        size as f64 / 1e6 / secs
    };
    // The crypto alone on one core, no I/O: seal every segment and hash
    // the plaintext (what the client does per byte, in two threads).
    let (seal_mbs, hash_mbs) = {
        use sha2::Digest as _;
        let cipher =
            ferry_core::attachment::SegmentCipher::new(&KeyBytes::random(&mut OsRng), layout);
        let mut buf = Vec::with_capacity(64 * 1024 + 16);
        let t = Instant::now();
        for i in 0..layout.segments {
            buf.clear();
            buf.resize(layout.plain_len(i) as usize, 0x5a);
            cipher.seal(i, &mut buf).unwrap();
        }
        let seal = size as f64 / 1e6 / t.elapsed().as_secs_f64();
        let block = vec![0x5au8; 64 * 1024];
        let mut h = sha2::Sha256::new();
        let t = Instant::now();
        for _ in 0..layout.segments {
            h.update(&block);
        }
        std::hint::black_box(h.finalize());
        (seal, size as f64 / 1e6 / t.elapsed().as_secs_f64())
    };
    let where_ = match (args.iter().any(|a| a == "--tmpfs"), no_fsync) {
        (true, _) => "tmpfs (/dev/shm)",
        (false, true) => "disk (TMPDIR), no fsync",
        (false, false) => "disk (TMPDIR), fsync per part",
    };
    let mb = size as f64 / 1e6;
    println!("attachment transfer of {size_mib} MiB on loopback, relay data on {where_}");
    println!("crypto on one core, no I/O: sealing {seal_mbs:.0} MB/s, SHA-256 {hash_mbs:.0} MB/s");
    println!("storage ceiling (a plain new-file write of the same size there): {ceiling:.0} MB/s");
    println!("| phase    | MB/s | client peak RSS | relay peak RSS |");
    println!("|----------|------|-----------------|----------------|");
    println!(
        "| upload   | {:.0} | {:.1} MiB | {:.1} MiB |",
        mb / up,
        up_client as f64 / 1024.0,
        up_relay as f64 / 1024.0
    );
    println!(
        "| download | {:.0} | {:.1} MiB | {:.1} MiB |",
        mb / down,
        down_client as f64 / 1024.0,
        down_relay as f64 / 1024.0
    );
    drop(relay);
}

fn reexec_on_tmpfs() {
    // tempfile reads TMPDIR through std::env::temp_dir; setting it is only
    // `unsafe` in edition 2024, which this crate forbids, so the bench
    // re-executes itself with TMPDIR set instead.
    if std::env::var_os("FERRY_BENCH_TMPFS").is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args().skip(1))
            .env("TMPDIR", "/dev/shm")
            .env("FERRY_BENCH_TMPFS", "1")
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
}
