//! The `ferry` command.
//!
//! `ferry relay` runs a relay with its embedded store; the other commands
//! act on the user's profile through a client session (see `user.rs`).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Parser as _;
use ferry_relay::{Relay, RelayConfig};
use zeroize::Zeroizing;

mod app;
mod cli;
mod duration;
mod media;
mod output;
mod relay_config;
mod secrets;
mod stow;
mod user;

use cli::{Cli, Command, RelayArgs};

fn main() -> anyhow::Result<()> {
    let argv = relay_config::preprocess(std::env::args_os().collect())?;
    let cli = Cli::parse_from(argv);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
                if matches!(cli.command, Command::Relay(_)) {
                    "info".into()
                } else {
                    "warn".into()
                }
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let ctx = user::Context {
        home: cli.home,
        passphrase_file: cli.passphrase_file,
        decoy: cli.decoy,
        out: output::Output { json: cli.json },
    };
    match cli.command {
        Command::Relay(args) => run_relay(*args),
        Command::Panic => user::panic(&ctx),
        Command::Stow {
            with_history,
            abandon,
        } => user::run(
            &ctx,
            if abandon {
                user::Run::AbandonStow
            } else {
                user::Run::Stow { with_history }
            },
        ),
        Command::Restore {
            relay,
            pin,
            takeover,
            proxy,
        } => user::run(
            &ctx,
            user::Run::Restore {
                relay,
                pin,
                takeover,
                proxy,
            },
        ),
        Command::App {
            listen,
            no_open,
            idle_lock,
            max_unlocked,
        } => app::run(
            &ctx,
            listen,
            no_open,
            ferry_client::LockLimits {
                idle: idle_lock,
                max_unlocked,
            },
        ),
        Command::Init {
            relay,
            relay_token_file,
            proxy,
        } => user::run(
            &ctx,
            user::Run::Init {
                relay,
                relay_token_file,
                proxy,
            },
        ),
        Command::Watch {
            idle_lock,
            max_unlocked,
        } => user::run(
            &ctx,
            user::Run::Watch(ferry_client::LockLimits {
                idle: idle_lock,
                max_unlocked,
            }),
        ),
        Command::Act(act) => user::run(&ctx, user::Run::Act(act)),
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

/// TURN for calls: the embedded server by default, on the listen address's
/// IP.
fn turn_settings(args: &RelayArgs) -> anyhow::Result<Option<ferry_relay::TurnSettings>> {
    if args.no_turn && args.turn_urls.is_empty() {
        return Ok(None);
    }
    let listen = args.turn_listen.unwrap_or_else(|| {
        let port = if args.listen.port() == 0 { 0 } else { 3478 };
        std::net::SocketAddr::new(args.listen.ip(), port)
    });
    // An embedded server on 0.0.0.0 without --turn-relay-ip is refused by
    // the relay as it starts (after its other checks).
    let relay_ip = match args.turn_relay_ip {
        Some(ip) => ip,
        None if !args.no_turn => listen.ip(),
        None => bail!("--turn-urls needs --turn-relay-ip, the address the TURN server relays on"),
    };
    let mut t = ferry_relay::TurnSettings::embedded(listen);
    if args.no_turn {
        t.listen = None;
    }
    t.relay_ip = relay_ip;
    t.ports = args.turn_ports.clone();
    t.urls.clone_from(&args.turn_urls);
    t.ttl = args.turn_ttl;
    if let Some(f) = &args.turn_secret_file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read the TURN secret {}", f.display()))?,
        );
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.len() < 16 {
            bail!("the TURN secret must be at least 16 characters");
        }
        t.secret = zeroize::Zeroizing::new(secret.as_bytes().to_vec());
    }
    Ok(Some(t))
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
    config.max_blob_size = args.max_blob_size;
    config.blob_ttl = args.blob_ttl;
    config.max_blob_storage = args.max_blob_storage;
    config.tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ferry_relay::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    config.tls_reload_interval = args.tls_reload_interval;
    config.tombstone_ttl = args.tombstone_ttl;
    config.rate_per_connection =
        ferry_relay::limit::Rate::new(args.rate_per_connection, args.burst_per_connection);
    config.rate_per_key = ferry_relay::limit::Rate::new(args.rate_per_key, args.burst_per_key);
    config.max_ws_connections = args.max_ws_connections;
    config.max_subscriptions_per_connection = args.max_subscriptions;
    config.max_canaries_per_mailbox = args.max_canaries_per_mailbox;
    config.blob_budget_per_key = args.blob_budget_per_key;
    config.plain_http = args.plain_http;
    config.turn = turn_settings(&args)?;
    let private = config.access_token.is_some();
    let clock_file = args.clock_offset_file.clone();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let mut relay = Relay::embedded(config)
            .with_context(|| format!("cannot open the relay store in {}", data.display()))?;
        if let Some(f) = clock_file {
            relay = relay.with_clock(std::sync::Arc::new(
                ferry_relay::clock::FileOffsetClock::new(f),
            ));
        }
        let running = relay.start().await.context("cannot start the relay")?;
        // The first stdout line is for people and scripts: where to connect.
        // One line only: a supervisor may close the pipe after it.
        println!(
            "ferry relay listening on {} (data in {}{}{})",
            running.url(),
            data.display(),
            match running.turn_addr() {
                Some(a) => format!(", TURN on {a} udp+tcp"),
                None => String::new(),
            },
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
