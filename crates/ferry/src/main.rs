//! The `ferry` command.
//!
//! `ferry relay` runs a relay with its embedded store; the other commands
//! act on the user's profile (see `user.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use ferry_relay::{Relay, RelayConfig};
use zeroize::Zeroizing;

mod duration;
mod media;
mod output;
mod user;

/// Ferry: end-to-end encrypted messaging for people whose messages are evidence.
#[derive(Parser)]
#[command(name = "ferry", version)]
struct Cli {
    /// Profile directory [default: the user's data dir]/ferry/profile.
    #[arg(long, global = true)]
    home: Option<PathBuf>,
    /// Print one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
    /// Read the passphrase from this file (else FERRY_PASSPHRASE, else a prompt).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    /// Act on the decoy profile (unlocked with the real passphrase), to
    /// prepare what the duress passphrase will show.
    #[arg(long, global = true)]
    decoy: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a profile whose mailboxes live on RELAY.
    Init {
        /// Relay base URL, e.g. http://127.0.0.1:7070.
        #[arg(long)]
        relay: String,
        /// File with the relay's access token, if it is a private relay.
        #[arg(long)]
        relay_token_file: Option<PathBuf>,
    },
    /// Invite a contact: prints a one-time link (and a QR code on a terminal).
    Invite {
        /// The name you will know this contact by (kept only on this device).
        #[arg(long)]
        alias: String,
    },
    /// Accept an invite link.
    Accept {
        /// The invite link.
        link: String,
        /// The name you will know this contact by.
        #[arg(long)]
        alias: String,
    },
    /// Send a text message.
    Send {
        /// Contact alias.
        alias: String,
        /// The message.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
        /// The receiver's first display destroys it; you keep no copy.
        #[arg(long)]
        view_once: bool,
        /// Send even though the contact's device was reported compromised.
        #[arg(long)]
        force: bool,
    },
    /// Send a file (photo, video, document): encrypted in chunks, resumable.
    SendFile {
        /// Contact alias.
        alias: String,
        /// The file.
        path: PathBuf,
        /// The receiver can save it once; you keep no copy.
        #[arg(long)]
        view_once: bool,
        /// Send even though the contact's device was reported compromised.
        #[arg(long)]
        force: bool,
    },
    /// Send a voice message: Ogg/Opus as is, WAV encoded to Opus.
    SendVoice {
        /// Contact alias.
        alias: String,
        /// An .ogg (Opus) or .wav recording.
        path: PathBuf,
        /// The receiver can save it once; you keep no copy.
        #[arg(long)]
        view_once: bool,
        /// Send even though the contact's device was reported compromised.
        #[arg(long)]
        force: bool,
    },
    /// Download, check and decrypt a received attachment to PATH (a
    /// directory gets the sender's file name). Resumes an interrupted save.
    Save {
        /// Contact alias.
        alias: String,
        /// Message id (from `history --json`; ids may start with `-`).
        #[arg(allow_hyphen_values = true)]
        msg_id: String,
        /// Where to write it; an existing file is never replaced.
        path: PathBuf,
    },
    /// "Prove it's you": give your contacts verifiers for a phrase you
    /// remember (and a duress phrase). Nothing of them stays on the device.
    #[command(subcommand)]
    Phrase(PhraseCmd),
    /// Dead-man switch: contacts are warned if you do not unlock with your
    /// real passphrase within DURATION (default 72h; `off` to disable).
    Canary {
        /// Duration (e.g. 72h, 7d) or `off`.
        duration: String,
    },
    /// Ask a contact to prove it is them.
    Challenge {
        /// Contact alias.
        alias: String,
    },
    /// Answer a contact's challenge (prompts for the phrase).
    Answer {
        /// Contact alias.
        alias: String,
    },
    /// Warn a contact (or all) that this device may be compromised.
    Alert {
        /// Contact alias.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        alias: Option<String>,
        /// Warn every contact.
        #[arg(long)]
        all: bool,
    },
    /// Set the conversation's disappearing-message timer on both sides
    /// (e.g. 30m, 24h, 7d, or `off`). New conversations start at 24h.
    Timer {
        /// Contact alias.
        alias: String,
        /// Duration or `off`.
        duration: String,
    },
    /// Delete a message on both sides.
    Delete {
        /// Contact alias.
        alias: String,
        /// Message id (from `history --json`; ids may start with `-`).
        #[arg(allow_hyphen_values = true)]
        msg_id: String,
    },
    /// Fetch everything, finish handshakes, print new messages.
    Sync,
    /// Stay connected and print messages as they arrive; locks itself after
    /// an idle period or a maximum unlocked time.
    Watch {
        /// Lock after this long without a message in or out.
        #[arg(long, default_value = "15m", value_parser = duration::parse)]
        idle_lock: Duration,
        /// Lock after this long unlocked, whatever happens.
        #[arg(long, default_value = "8h", value_parser = duration::parse)]
        max_unlocked: Duration,
    },
    /// List contacts.
    Contacts,
    /// Show a conversation.
    History {
        /// Contact alias.
        alias: String,
    },
    /// Destroy this profile at once, without a passphrase. Irreversible.
    Panic,
    /// Destroy the profile after N wrong passphrases in a row (`off`: never,
    /// the default).
    WipeAfter {
        /// A number of attempts, or `off`.
        attempts: String,
    },
    /// Duress passphrase: entering it instead of the passphrase opens a
    /// decoy profile and destroys this one first.
    #[command(subcommand)]
    Duress(DuressCmd),
    /// Run a relay (mailboxes, store-and-forward, live push).
    Relay(RelayArgs),
}

#[derive(Subcommand)]
enum PhraseCmd {
    /// Set (or, with the current phrase, change) the phrase and duress
    /// phrase. Prompts; scripts use FERRY_PHRASE, FERRY_DURESS_PHRASE and
    /// FERRY_CURRENT_PHRASE.
    Set,
}

#[derive(Subcommand)]
enum DuressCmd {
    /// Set the duress passphrase and create an empty decoy profile; fill it
    /// with innocuous contacts using `--decoy` on any command.
    Set {
        /// Relay for the decoy's mailboxes [default: this profile's relay].
        #[arg(long)]
        relay: Option<String>,
        /// Read the duress passphrase from this file (else
        /// FERRY_DURESS_PASSPHRASE, else a prompt).
        #[arg(long)]
        duress_passphrase_file: Option<PathBuf>,
    },
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
    /// Skip fsync at commit and after upload parts: acknowledged messages
    /// and confirmed upload offsets survive a crash of the relay but not a
    /// power loss. For benchmarks and throwaway relays.
    #[arg(long)]
    no_fsync: bool,
    /// Largest attachment blob in bytes (the default is a 2 GiB file once
    /// padded and sealed: 2 GiB plus a 16-byte tag per 64 KiB).
    #[arg(long, default_value_t = 2 * 1024 * 1024 * 1024 + 32_768 * 16)]
    max_blob_size: u64,
    /// Bytes all live attachment blobs may take together.
    #[arg(long, default_value_t = 20 * 1024 * 1024 * 1024)]
    max_blob_storage: u64,
    /// How long attachment blobs are kept.
    #[arg(long, default_value = "48h", value_parser = duration::parse)]
    blob_ttl: Duration,
    /// Tests only: add the number of seconds in this file to the clock.
    #[arg(long, hide = true)]
    clock_offset_file: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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
    let out = output::Output { json: cli.json };
    let ctx = user::Context {
        home: cli.home,
        passphrase_file: cli.passphrase_file,
        decoy: cli.decoy,
        out,
    };
    match cli.command {
        Command::Relay(args) => run_relay(args),
        Command::Init {
            relay,
            relay_token_file,
        } => {
            let token = match relay_token_file {
                Some(p) => Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("cannot read {}", p.display()))?
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            user::run(ctx, user::Cmd::Init { relay, token })
        }
        Command::Invite { alias } => user::run(ctx, user::Cmd::Invite { alias }),
        Command::Accept { link, alias } => user::run(ctx, user::Cmd::Accept { link, alias }),
        Command::Send {
            alias,
            text,
            view_once,
            force,
        } => user::run(
            ctx,
            user::Cmd::Send {
                alias,
                text: text.join(" "),
                view_once,
                force,
            },
        ),
        Command::SendFile {
            alias,
            path,
            view_once,
            force,
        } => user::run(
            ctx,
            user::Cmd::SendFile {
                alias,
                path,
                voice: false,
                view_once,
                force,
            },
        ),
        Command::SendVoice {
            alias,
            path,
            view_once,
            force,
        } => user::run(
            ctx,
            user::Cmd::SendFile {
                alias,
                path,
                voice: true,
                view_once,
                force,
            },
        ),
        Command::Save {
            alias,
            msg_id,
            path,
        } => user::run(
            ctx,
            user::Cmd::Save {
                alias,
                id: msg_id,
                path,
            },
        ),
        Command::Alert { alias, .. } => user::run(ctx, user::Cmd::Alert(alias)),
        Command::Phrase(PhraseCmd::Set) => user::run(ctx, user::Cmd::PhraseSet),
        Command::Canary { duration } => {
            let secs = if duration == "off" {
                None
            } else {
                Some(
                    duration::parse(&duration)
                        .map_err(anyhow::Error::msg)?
                        .as_secs()
                        .max(60),
                )
            };
            user::run(ctx, user::Cmd::Canary(secs))
        }
        Command::Challenge { alias } => user::run(ctx, user::Cmd::Challenge(alias)),
        Command::Answer { alias } => user::run(ctx, user::Cmd::Answer(alias)),
        Command::Timer { alias, duration } => {
            let secs = if duration == "off" {
                None
            } else {
                Some(
                    duration::parse(&duration)
                        .map_err(anyhow::Error::msg)?
                        .as_secs()
                        .max(1),
                )
            };
            user::run(ctx, user::Cmd::Timer { alias, secs })
        }
        Command::Delete { alias, msg_id } => {
            user::run(ctx, user::Cmd::Delete { alias, id: msg_id })
        }
        Command::Sync => user::run(ctx, user::Cmd::Sync),
        Command::Watch {
            idle_lock,
            max_unlocked,
        } => user::run(
            ctx,
            user::Cmd::Watch(ferry_client::LockLimits {
                idle: idle_lock,
                max_unlocked,
            }),
        ),
        Command::Contacts => user::run(ctx, user::Cmd::Contacts),
        Command::History { alias } => user::run(ctx, user::Cmd::History { alias }),
        Command::Panic => user::panic(&ctx),
        Command::WipeAfter { attempts } => {
            let n = if attempts == "off" {
                0
            } else {
                match attempts.parse::<u32>() {
                    Ok(n) if n >= 1 => n,
                    _ => bail!("give a number of attempts (1 or more) or `off`"),
                }
            };
            user::run(ctx, user::Cmd::WipeAfter(n))
        }
        Command::Duress(DuressCmd::Set {
            relay,
            duress_passphrase_file,
        }) => user::run(
            ctx,
            user::Cmd::DuressSet {
                relay,
                file: duress_passphrase_file,
            },
        ),
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
    config.max_blob_size = args.max_blob_size;
    config.blob_ttl = args.blob_ttl;
    config.max_blob_storage = args.max_blob_storage;
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
