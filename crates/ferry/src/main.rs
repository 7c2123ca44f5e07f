//! The `ferry` command.
//!
//! `ferry relay` runs a relay with its embedded store. User commands (init,
//! invite, send, ...) arrive with the client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use ferry_relay::{Relay, RelayConfig};
use zeroize::Zeroizing;

mod duration;

/// Ferry: end-to-end encrypted messaging for people whose messages are evidence.
#[derive(Parser)]
#[command(name = "ferry", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a relay (mailboxes, store-and-forward, live push).
    Relay(RelayArgs),
}

#[derive(Args)]
struct RelayArgs {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: SocketAddr,
    /// Data directory for the embedded store [default: the user's data dir]/ferry/relay.
    #[arg(long)]
    data: Option<PathBuf>,
    /// How long unfetched messages are kept (e.g. 21d, 12h, 90s).
    #[arg(long, default_value = "21d", value_parser = duration::parse)]
    message_ttl: Duration,
    /// How often expired messages are removed.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    sweep_interval: Duration,
    /// Most waiting messages per mailbox.
    #[arg(long, default_value_t = 10_000)]
    max_messages: u64,
    /// Most waiting payload bytes per mailbox.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_bytes: u64,
    /// Accepted clock difference for signed requests.
    #[arg(long, default_value = "120s", value_parser = duration::parse)]
    max_clock_skew: Duration,
    /// File holding an access token required to create mailboxes (private relay).
    /// The FERRY_RELAY_ACCESS_TOKEN variable works too.
    #[arg(long)]
    access_token_file: Option<PathBuf>,
    /// Skip fsync at commit: acknowledged messages survive a crash of the
    /// relay but not a power loss. For benchmarks and throwaway relays.
    #[arg(long)]
    no_fsync: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match cli.command {
        Command::Relay(args) => run_relay(args),
    }
}

fn default_relay_dir() -> anyhow::Result<PathBuf> {
    let base =
        dirs::data_dir().context("no user data directory on this system; pass --data DIR")?;
    Ok(base.join("ferry").join("relay"))
}

fn read_token(args: &RelayArgs) -> anyhow::Result<Option<Zeroizing<String>>> {
    let raw = match &args.access_token_file {
        Some(p) => Some(Zeroizing::new(std::fs::read_to_string(p).with_context(
            || format!("cannot read access token file {}", p.display()),
        )?)),
        None => std::env::var("FERRY_RELAY_ACCESS_TOKEN")
            .ok()
            .map(Zeroizing::new),
    };
    match raw {
        None => Ok(None),
        Some(t) => {
            let t = Zeroizing::new(t.trim().to_owned());
            if t.len() < 16 {
                bail!("the access token must be at least 16 characters");
            }
            Ok(Some(t))
        }
    }
}

fn run_relay(args: RelayArgs) -> anyhow::Result<()> {
    let data = match &args.data {
        Some(d) => d.clone(),
        None => default_relay_dir()?,
    };
    let mut config = RelayConfig::new(data.clone());
    config.listen = args.listen;
    config.message_ttl = args.message_ttl;
    config.sweep_interval = args.sweep_interval;
    config.max_messages_per_mailbox = args.max_messages;
    config.max_bytes_per_mailbox = args.max_bytes;
    config.max_clock_skew = args.max_clock_skew;
    config.access_token = read_token(&args)?;
    config.fsync = !args.no_fsync;
    let private = config.access_token.is_some();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let relay = Relay::embedded(config)
            .with_context(|| format!("cannot open the relay store in {}", data.display()))?;
        let running = relay.start().await.context("cannot start the relay")?;
        // The first stdout line is for people and scripts: where to connect.
        println!(
            "ferry relay listening on {} (data in {}{})",
            running.url(),
            data.display(),
            if private {
                ", access token required to create mailboxes"
            } else {
                ""
            }
        );
        let stop = running.stop_handle();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
        });
        running.wait().await.context("relay stopped with an error")
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
