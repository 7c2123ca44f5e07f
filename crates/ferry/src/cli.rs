//! The command line: one model, parsed straight into the types the
//! commands use (durations, `off`, attempt counts), so nothing is copied
//! from one enum into another.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ferry_client::ProxyUrl;

use crate::duration;

/// Ferry: end-to-end encrypted messaging for people whose messages are evidence.
#[derive(Parser)]
#[command(name = "ferry", version, args_override_self = true)]
pub(crate) struct Cli {
    /// Profile directory [default: the user's data dir]/ferry/profile.
    #[arg(long, global = true)]
    pub(crate) home: Option<PathBuf>,
    /// Print one JSON object per line.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Read the passphrase from this file (else FERRY_PASSPHRASE, else a prompt).
    #[arg(long, global = true)]
    pub(crate) passphrase_file: Option<PathBuf>,
    /// Act on the decoy profile (unlocked with the real passphrase), to
    /// prepare what the duress passphrase will show.
    #[arg(long, global = true)]
    pub(crate) decoy: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Every command.
#[derive(Subcommand)]
pub(crate) enum Command {
    /// Create a profile whose mailboxes live on RELAY.
    Init {
        /// Relay base URL, e.g. http://127.0.0.1:7070.
        #[arg(long)]
        relay: String,
        /// File with the relay's access token, if it is a private relay.
        #[arg(long)]
        relay_token_file: Option<PathBuf>,
        /// Reach relays only through this SOCKS5 proxy, e.g. Tor's
        /// socks5h://127.0.0.1:9050 (see `ferry proxy`); FERRY_PROXY works
        /// too and keeps credentials out of the command line.
        #[arg(long, env = "FERRY_PROXY", hide_env_values = true)]
        proxy: Option<String>,
    },
    /// Stay connected and print messages as they arrive; locks itself after
    /// an idle period or a maximum unlocked time.
    Watch {
        /// Lock after this long (incoming messages do not count as
        /// activity: a captor could keep sending them).
        #[arg(long, default_value = "15m", value_parser = duration::parse)]
        idle_lock: Duration,
        /// Lock after this long unlocked, whatever happens.
        #[arg(long, default_value = "8h", value_parser = duration::parse)]
        max_unlocked: Duration,
    },
    /// Run the app: the client as a local service on loopback with a
    /// graphical interface in the browser (Korean and English). Prints the
    /// address to open first (a one-time link), then opens the browser.
    App {
        /// Where to listen (loopback only; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Only print the address; do not open a browser.
        #[arg(long)]
        no_open: bool,
        /// Lock after this long without anyone using the app.
        #[arg(long, default_value = "15m", value_parser = duration::parse)]
        idle_lock: Duration,
        /// Lock after this long unlocked, whatever happens.
        #[arg(long, default_value = "8h", value_parser = duration::parse)]
        max_unlocked: Duration,
    },
    /// Destroy this profile at once, without a passphrase. Irreversible.
    Panic,
    /// Store the account on the relay under the recovery phrase and remove
    /// it from this device (see `ferry recovery setup`).
    Stow {
        /// Keep the message history too (off by default: contacts,
        /// conversations and settings go; past messages are destroyed).
        #[arg(long)]
        with_history: bool,
        /// Give up a stow that could not finish (its relay is gone for
        /// good) and keep the profile here; nothing is stowed.
        #[arg(long, conflicts_with = "with_history")]
        abandon: bool,
    },
    /// Bring a stowed account back from its recovery phrase
    /// (FERRY_RECOVERY_PHRASE, else asked), then unlock it with its
    /// passphrase; the duress passphrase works as at any unlock.
    Restore {
        /// The relay the account was stowed on.
        #[arg(long)]
        relay: String,
        /// A PIN was set: ask for it (or FERRY_RECOVERY_PIN).
        #[arg(long)]
        pin: bool,
        /// Take the account from the device that holds it (that device is
        /// shut out and every conversation's keys are refreshed).
        #[arg(long)]
        takeover: bool,
        /// Reach the relay through this SOCKS5 proxy (FERRY_PROXY works too).
        #[arg(long, env = "FERRY_PROXY", hide_env_values = true)]
        proxy: Option<String>,
    },
    /// Run a relay (mailboxes, store-and-forward, live push).
    Relay(Box<RelayArgs>),
    #[command(flatten)]
    Act(Act),
}

/// The commands that unlock the profile, act once, and lock it again.
#[derive(Subcommand)]
pub(crate) enum Act {
    /// Invite a contact: prints a one-time link (and a QR code on a terminal).
    Invite {
        /// The name you will know this contact by (kept only on this device).
        #[arg(long)]
        alias: String,
    },
    /// Accept an invite link.
    Accept {
        /// The invite link, or `-` to read it from standard input (kept out
        /// of shell history).
        link: String,
        /// The name you will know this contact by.
        #[arg(long)]
        alias: String,
        /// Set the profile's proxy first, before any connection (see
        /// `ferry proxy`); FERRY_PROXY works too.
        #[arg(long, env = "FERRY_PROXY", hide_env_values = true)]
        proxy: Option<String>,
    },
    /// Reach relays only through a SOCKS5 proxy that resolves names itself
    /// (Tor: socks5h://127.0.0.1:9050), or `off` to connect directly. Set
    /// before any connection of this command; covers every connection of
    /// this profile and of its duress decoy. If the proxy is down nothing
    /// goes out.
    Proxy {
        /// socks5h://HOST:PORT (optionally USER:PASS@, better given in
        /// FERRY_PROXY, which keeps it out of shell history), or `off`.
        #[arg(env = "FERRY_PROXY", hide_env_values = true)]
        setting: String,
    },
    /// Send a text message.
    Send {
        /// Contact alias.
        alias: String,
        /// The message, or `-` alone to read it from standard input (kept
        /// out of shell history and the process list).
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
    SendFile(FileArgs),
    /// Send a voice message: Ogg/Opus as is, WAV encoded to Opus.
    SendVoice(FileArgs),
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
        /// Duration (e.g. 72h, 7d, at least a minute) or `off`.
        #[arg(value_parser = duration_or_off)]
        duration: DurationOrOff,
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
        #[arg(value_parser = duration_or_off)]
        duration: DurationOrOff,
    },
    /// Delete a message on both sides.
    Delete {
        /// Contact alias.
        alias: String,
        /// Message id (from `history --json`; ids may start with `-`).
        #[arg(allow_hyphen_values = true)]
        msg_id: String,
    },
    /// Show the conversation's safety code: compare it with your contact's
    /// (in person or on a call you trust); if they differ, someone is in
    /// between.
    Safety {
        /// Contact alias.
        alias: String,
    },
    /// Fetch everything, finish handshakes, print new messages.
    Sync,
    /// List contacts.
    Contacts,
    /// Show a conversation.
    History {
        /// Contact alias.
        alias: String,
    },
    /// Destroy the profile after N wrong passphrases in a row (`off`: never,
    /// the default).
    WipeAfter {
        /// A number of attempts, or `off`.
        #[arg(value_parser = attempts_or_off)]
        attempts: u32,
    },
    /// Duress passphrase: entering it instead of the passphrase opens a
    /// decoy profile and destroys this one first.
    #[command(subcommand)]
    Duress(DuressCmd),
    /// The recovery phrase for stowing the account on the relay.
    #[command(subcommand)]
    Recovery(RecoveryCmd),
    /// Group chats: `send`, `history` and the other message commands take
    /// a group's name as they take a contact's alias.
    #[command(subcommand)]
    Group(GroupCmd),
}

#[derive(Subcommand)]
pub(crate) enum GroupCmd {
    /// Create a group you own, on your relay.
    Create {
        /// The name you will know the group by (kept only on this device;
        /// members you add are offered it).
        name: String,
        /// Your name in this group (members see it; by default a neutral
        /// one that says nothing about you).
        #[arg(long = "as", value_name = "NAME")]
        display: Option<String>,
    },
    /// Add contacts to a group (admins): each one's device answers at its
    /// next sync, and they are in after your next sync.
    Add {
        /// The group.
        name: String,
        /// Contacts to add.
        #[arg(required = true, num_args = 1..)]
        aliases: Vec<String>,
    },
    /// Remove a member (admins): a contact's alias or the member's name in
    /// the group. The group's relay keys move on with it.
    Remove {
        /// The group.
        name: String,
        /// The member.
        member: String,
    },
    /// Leave a group: it and its history are gone from this device at once.
    Leave {
        /// The group.
        name: String,
    },
    /// List a group's members and their roles.
    Members {
        /// The group.
        name: String,
    },
    /// List your groups.
    List,
}

/// `ferry recovery ...`
#[derive(Subcommand)]
pub(crate) enum RecoveryCmd {
    /// Make a new recovery phrase (12 words, shown once) for `ferry stow`
    /// and `ferry restore`.
    Setup {
        /// Words in Korean (ko) or English (en).
        #[arg(long, default_value = "ko", value_parser = ["ko", "en"])]
        lang: String,
        /// Also set a PIN (FERRY_RECOVERY_PIN, else asked): a second factor;
        /// the relay deletes the stowed account after 10 wrong PINs.
        #[arg(long)]
        pin: bool,
        /// Another relay that keeps the account's version, so a restore
        /// notices a relay that serves an older copy (repeatable, up to 8).
        #[arg(long = "witness", value_name = "RELAY")]
        witnesses: Vec<String>,
    },
}

/// What `send-file` and `send-voice` take.
#[derive(Args)]
pub(crate) struct FileArgs {
    /// Contact alias.
    pub(crate) alias: String,
    /// The file (for a voice message: an .ogg (Opus) or .wav recording).
    pub(crate) path: PathBuf,
    /// The receiver can save it once; you keep no copy.
    #[arg(long)]
    pub(crate) view_once: bool,
    /// Send even though the contact's device was reported compromised.
    #[arg(long)]
    pub(crate) force: bool,
    /// Send a photo or video as it is, with its name, location, dates and
    /// camera details (removed by default).
    #[arg(long)]
    pub(crate) keep_metadata: bool,
}

/// `ferry phrase ...`
#[derive(Subcommand)]
pub(crate) enum PhraseCmd {
    /// Set (or, with the current phrase, change) the phrase and duress
    /// phrase. Prompts; scripts use FERRY_PHRASE, FERRY_DURESS_PHRASE and
    /// FERRY_CURRENT_PHRASE.
    Set,
}

/// `ferry duress ...`
#[derive(Subcommand)]
pub(crate) enum DuressCmd {
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

/// `ferry relay`: its options.
#[derive(Args)]
pub(crate) struct RelayArgs {
    /// Read options from this TOML file first (keys are the long option
    /// names, e.g. `listen = "0.0.0.0:443"`); options given on the command
    /// line override it.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub(crate) listen: SocketAddr,
    /// Data directory for the embedded store [default: the user's data dir]/ferry/relay.
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// How long unfetched messages are kept (e.g. 21d, 12h, 90s).
    #[arg(long, default_value = "21d", value_parser = duration::parse)]
    pub(crate) message_ttl: Duration,
    /// How often expired messages are removed.
    #[arg(long, default_value = "60s", value_parser = duration::parse)]
    pub(crate) sweep_interval: Duration,
    /// Most waiting messages per mailbox.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) max_messages: u64,
    /// Most waiting payload bytes per mailbox.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub(crate) max_bytes: u64,
    /// Accepted clock difference for signed requests.
    #[arg(long, default_value = "120s", value_parser = duration::parse)]
    pub(crate) max_clock_skew: Duration,
    /// File holding an access token required to create mailboxes (private relay).
    /// The FERRY_RELAY_ACCESS_TOKEN variable works too.
    #[arg(long)]
    pub(crate) access_token_file: Option<PathBuf>,
    /// Skip fsync at commit and after upload parts: acknowledged messages
    /// and confirmed upload offsets survive a crash of the relay but not a
    /// power loss. For benchmarks and throwaway relays.
    #[arg(long)]
    pub(crate) no_fsync: bool,
    /// Largest attachment blob in bytes (the default is a 2 GiB file once
    /// padded and sealed: 2 GiB plus a 16-byte tag per 64 KiB).
    #[arg(long, default_value_t = 2 * 1024 * 1024 * 1024 + 32_768 * 16)]
    pub(crate) max_blob_size: u64,
    /// Bytes all live attachment blobs may take together.
    #[arg(long, default_value_t = 20 * 1024 * 1024 * 1024)]
    pub(crate) max_blob_storage: u64,
    /// How long attachment blobs are kept.
    #[arg(long, default_value = "48h", value_parser = duration::parse)]
    pub(crate) blob_ttl: Duration,
    /// How long the id of a deleted mailbox stays taken (longer than any
    /// invite lives).
    #[arg(long, default_value = "30d", value_parser = duration::parse)]
    pub(crate) tombstone_ttl: Duration,
    /// Requests (and WebSocket frames) per second on one connection.
    #[arg(long, default_value_t = 100.0, value_parser = positive)]
    pub(crate) rate_per_connection: f64,
    /// Requests one connection may send at once before its rate applies.
    #[arg(long, default_value_t = 1000.0, value_parser = positive)]
    pub(crate) burst_per_connection: f64,
    /// Requests per second signed by one key.
    #[arg(long, default_value_t = 20.0, value_parser = positive)]
    pub(crate) rate_per_key: f64,
    /// Requests one key may sign at once before its rate applies.
    #[arg(long, default_value_t = 400.0, value_parser = positive)]
    pub(crate) burst_per_key: f64,
    /// Most open WebSocket connections.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) max_ws_connections: usize,
    /// Most mailboxes subscribed on one WebSocket connection.
    #[arg(long, default_value_t = 1000)]
    pub(crate) max_subscriptions: usize,
    /// Most dead-man switches waiting for one mailbox (each also holds one
    /// place in the mailbox's quota).
    #[arg(long, default_value_t = 4)]
    pub(crate) max_canaries_per_mailbox: u64,
    /// Bytes of live attachment blobs one sender key may have reserved.
    #[arg(long, default_value_t = 4 * 1024 * 1024 * 1024 + 1024 * 1024)]
    pub(crate) blob_budget_per_key: u64,
    /// Serve HTTPS and WSS with this PEM certificate chain (needs
    /// --tls-key). Both files are reloaded when they change.
    #[arg(long, requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// How often the TLS files are checked for a change.
    #[arg(long, default_value = "30s", value_parser = duration::parse)]
    pub(crate) tls_reload_interval: Duration,
    /// Serve plain HTTP on an address beyond loopback (only behind a
    /// TLS-terminating proxy on another host). Without TLS the relay
    /// otherwise refuses any address but loopback.
    #[arg(long, conflicts_with = "tls_cert")]
    pub(crate) plain_http: bool,
    /// Address of the embedded TURN server for calls (UDP and TCP on one
    /// port) [default: the listen address's IP, port 3478; a free port when
    /// --listen's port is 0].
    #[arg(long)]
    pub(crate) turn_listen: Option<SocketAddr>,
    /// The public address relayed call media flows through [default: the
    /// TURN listen address's IP].
    #[arg(long)]
    pub(crate) turn_relay_ip: Option<IpAddr>,
    /// Ports for TURN allocations, FIRST-LAST.
    #[arg(long, default_value = "49152-65535", value_parser = parse_ports)]
    pub(crate) turn_ports: std::ops::RangeInclusive<u16>,
    /// Run no embedded TURN server (with --turn-urls: hand out credentials
    /// for an external one such as coturn; without: carry no calls).
    #[arg(long)]
    pub(crate) no_turn: bool,
    /// turn: URLs handed to clients instead of the embedded server's,
    /// comma-separated (coturn's, or a front end's).
    #[arg(long, value_delimiter = ',')]
    pub(crate) turn_urls: Vec<String>,
    /// File holding the TURN shared secret (coturn's static-auth-secret,
    /// with use-auth-secret) [default: a random one per run].
    #[arg(long)]
    pub(crate) turn_secret_file: Option<PathBuf>,
    /// How long TURN credentials work; a call cannot outlast them.
    #[arg(long, default_value = "2h", value_parser = duration::parse)]
    pub(crate) turn_ttl: Duration,
    /// Tests only: add the number of seconds in this file to the clock.
    #[arg(long, hide = true)]
    pub(crate) clock_offset_file: Option<PathBuf>,
}

/// A duration, or `off` (`None`).
#[derive(Clone, Copy)]
pub(crate) struct DurationOrOff(pub(crate) Option<Duration>);

fn duration_or_off(text: &str) -> Result<DurationOrOff, String> {
    if text == "off" {
        Ok(DurationOrOff(None))
    } else {
        duration::parse(text).map(|d| DurationOrOff(Some(d)))
    }
}

/// A finite number above zero.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err("give a number above zero".to_owned()),
    }
}

/// A proxy setting as typed: a URL, or `off` (`None`). Parsed here rather
/// than by clap, whose errors repeat the value (and with it any password).
pub(crate) fn proxy_setting(text: &str) -> Result<Option<ProxyUrl>, ferry_client::ProxyError> {
    if text == "off" {
        Ok(None)
    } else {
        text.parse::<ProxyUrl>().map(Some)
    }
}

/// A number of attempts (1 or more), or `off` (0).
fn attempts_or_off(text: &str) -> Result<u32, String> {
    if text == "off" {
        return Ok(0);
    }
    match text.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("give a number of attempts (1 or more) or `off`".to_owned()),
    }
}

/// `FIRST-LAST`, a port range.
fn parse_ports(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| "expected FIRST-LAST, e.g. 49152-65535".to_owned())?;
    let a: u16 = a.trim().parse().map_err(|_| "not a port".to_owned())?;
    let b: u16 = b.trim().parse().map_err(|_| "not a port".to_owned())?;
    if a == 0 || a > b {
        return Err("FIRST must be at least 1 and at most LAST".to_owned());
    }
    Ok(a..=b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
