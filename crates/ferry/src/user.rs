//! The user commands: open a session, act on it, print through the
//! renderer. Only `ferry-client` is used: no vault, no engine.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferry_client::{Network, Session, SessionError};
use zeroize::Zeroizing;

use crate::cli::proxy_setting;

use crate::cli::{Act, DuressCmd, GroupCmd, PhraseCmd, RecoveryCmd};
use crate::output::{Line, Output};
use crate::secrets::{self, Secret};

pub(crate) struct Context {
    pub(crate) home: Option<PathBuf>,
    pub(crate) passphrase_file: Option<PathBuf>,
    pub(crate) decoy: bool,
    pub(crate) out: Output,
}

/// What to run on the profile.
pub(crate) enum Run {
    Init {
        relay: String,
        relay_token_file: Option<PathBuf>,
        proxy: Option<String>,
    },
    Watch(ferry_client::LockLimits),
    Act(Act),
    Stow {
        with_history: bool,
    },
    AbandonStow,
    Restore {
        relay: String,
        pin: bool,
        takeover: bool,
        proxy: Option<String>,
    },
}

/// A user-facing failure with a stable code.
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        let code = e.code();
        let message = match code {
            "wrong_passphrase" => "wrong passphrase; nothing was changed".to_owned(),
            "no_profile" => "no profile here; run `ferry init --relay URL` first".to_owned(),
            "relay" => format!("{e}; check the relay address and your connection, then retry"),
            "relay_certificate" => format!(
                "{e}; the connection was not trusted, so nothing was sent (for a relay with a private CA, point SSL_CERT_FILE at its certificate)"
            ),
            "proxy_unreachable" => format!(
                "{e}; nothing was sent, not even directly: start the proxy (e.g. Tor) or change it with `ferry proxy`"
            ),
            _ => e.to_string(),
        };
        Self { code, message }
    }
}

/// Longest text read from standard input for `send ALIAS -`.
const MAX_TEXT: usize = 64 * 1024;
/// Longest invite link read from standard input for `accept -`.
const MAX_LINK: usize = 4 * 1024;

/// Reads standard input to its end (at most `max` bytes of UTF-8), without
/// the final line break.
fn stdin_text(max: usize) -> Result<Zeroizing<String>, Failure> {
    use std::io::Read as _;
    let mut raw = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(max as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| Failure {
            code: "usage",
            message: format!("cannot read standard input: {e}"),
        })?;
    if raw.len() > max {
        return Err(Failure {
            code: "usage",
            message: format!("standard input holds more than {max} bytes"),
        });
    }
    let text = std::str::from_utf8(&raw).map_err(|_| Failure {
        code: "usage",
        message: "standard input is not UTF-8 text".to_owned(),
    })?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    Ok(Zeroizing::new(text.to_owned()))
}

/// A proxy setting that does not parse (the message never repeats it).
fn usage(e: ferry_client::ProxyError) -> Failure {
    Failure {
        code: "usage",
        message: e.to_string(),
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self {
            code: "usage",
            message: format!("{e:#}"),
        }
    }
}

pub(crate) fn home(ctx: &Context) -> anyhow::Result<PathBuf> {
    match &ctx.home {
        Some(h) => Ok(h.clone()),
        None => Ok(dirs::data_dir()
            .context("no user data directory on this system; pass --home DIR")?
            .join("ferry")
            .join("profile")),
    }
}

/// `ferry panic`: no passphrase, no questions, no network.
pub(crate) fn panic(ctx: &Context) -> anyhow::Result<()> {
    let home = home(ctx)?;
    let started = std::time::Instant::now();
    match ferry_client::session::panic_wipe(&home) {
        Ok(_) => {
            let millis = started.elapsed().as_millis() as u64;
            ctx.out.print(&Line::Wiped { millis });
            Ok(())
        }
        Err(e) if e.code() == "no_profile" => {
            ctx.out
                .error("no_profile", "no profile here; nothing to destroy");
            std::process::exit(1);
        }
        Err(e) => {
            ctx.out.error(
                "wipe_failed",
                &format!("could not finish destroying the profile: {e}; run it again"),
            );
            std::process::exit(1);
        }
    }
}

pub(crate) fn run(ctx: &Context, run: Run) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match rt.block_on(execute(ctx, run)) {
        Ok(()) => Ok(()),
        Err(f) => {
            ctx.out.error(f.code, &f.message);
            std::process::exit(1);
        }
    }
}

async fn execute(ctx: &Context, run: Run) -> Result<(), Failure> {
    let home = home(ctx)?;
    match run {
        Run::Init {
            relay,
            relay_token_file,
            proxy,
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
            let pass = secrets::read(Secret::Passphrase {
                file: ctx.passphrase_file.as_deref(),
                new: true,
            })?;
            let proxy = match proxy.as_deref() {
                Some(p) => proxy_setting(p).map_err(usage)?,
                None => None,
            };
            let mut session = Session::init(&home, &pass, &relay, token)?;
            if let Some(p) = proxy {
                // Stored before anything could connect.
                session.set_network(Network::via(p))?;
            }
            ctx.out.print(&Line::Initialized { relay });
            Ok(())
        }
        Run::Watch(limits) => watch(ctx, &home, open(ctx, &home, None).await?, limits).await,
        Run::Stow { with_history } => {
            crate::stow::stow(ctx, open(ctx, &home, None).await?, with_history).await
        }
        Run::AbandonStow => {
            let pass = secrets::read(Secret::Passphrase {
                file: ctx.passphrase_file.as_deref(),
                new: false,
            })?;
            let session = Session::unlock_abandoning_stow(&home, &pass).await?;
            drop(pass);
            let _ = session.finish();
            ctx.out.print(&Line::StowAbandoned);
            Ok(())
        }
        Run::Restore {
            relay,
            pin,
            takeover,
            proxy,
        } => crate::stow::restore(ctx, &home, &relay, pin, takeover, proxy).await,
        Run::Act(act) => {
            // A proxy given with the command applies before the unlock's
            // own connections.
            let network = match &act {
                Act::Proxy { setting: p } | Act::Accept { proxy: Some(p), .. } => Some(
                    proxy_setting(p)
                        .map_err(usage)?
                        .map_or_else(Network::direct, Network::via),
                ),
                _ => None,
            };
            let mut session = open(ctx, &home, network).await?;
            let result = act_on(ctx, &mut session, act).await;
            // Keep both slots the same size whatever happened.
            let _ = session.finish();
            result
        }
    }
}

/// Unlocks the profile (or, with `--decoy`, the decoy through it).
async fn open(ctx: &Context, home: &Path, network: Option<Network>) -> Result<Session, Failure> {
    let pass = secrets::read(Secret::Passphrase {
        file: ctx.passphrase_file.as_deref(),
        new: false,
    })?;
    // Silent: after a duress unlock this warns the destroyed profile's
    // contacts; after a real one it renews the dead-man switches. It never
    // prints.
    let real = Session::unlock_with(home, &pass, network).await?;
    drop(pass);
    if !ctx.decoy {
        return Ok(real);
    }
    real.into_decoy()?.ok_or_else(|| Failure {
        code: "no_decoy",
        message: "no duress passphrase is set; run `ferry duress set` first".to_owned(),
    })
}

async fn watch(
    ctx: &Context,
    home: &Path,
    mut session: Session,
    limits: ferry_client::LockLimits,
) -> Result<(), Failure> {
    let out = ctx.out;
    loop {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        session.set_listener(Some(Box::new(move |ev| out.event(ev))));
        let reason = session.watch(stop, limits).await;
        // Whatever ended it, what was shown leaves the screen and the
        // scrollback first.
        out.clear_terminal();
        let Some(reason) = reason? else {
            let _ = session.finish();
            return Ok(());
        };
        // Locked: close the vault and forget every key before anything else.
        let _ = session.lock(reason);
        out.print(&Line::Locked { reason });
        // Only a person at a terminal can unlock again; a passphrase from
        // a file or the environment is not reused for that. A destroyed
        // profile cannot be unlocked at all.
        if reason == ferry_client::LockReason::Wiped
            || ctx.passphrase_file.is_some()
            || std::env::var_os("FERRY_PASSPHRASE").is_some()
            || !std::io::stdin().is_terminal()
        {
            std::process::exit(3);
        }
        session = open(ctx, home, None).await?;
    }
}

async fn act_on(ctx: &Context, session: &mut Session, act: Act) -> Result<(), Failure> {
    let out = ctx.out;
    let line = match act {
        Act::Duress(DuressCmd::Set {
            relay,
            duress_passphrase_file,
        }) => {
            let duress = secrets::read(Secret::Duress {
                file: duress_passphrase_file.as_ref(),
            })?;
            let relay = relay.unwrap_or_else(|| session.relay_url().to_owned());
            session.set_duress(&duress, &relay)?;
            Line::DuressSet
        }
        Act::Recovery(RecoveryCmd::Setup {
            lang,
            pin,
            witnesses,
        }) => crate::stow::setup(ctx, session, &lang, pin, &witnesses).await?,
        Act::Invite { alias } => {
            let link = session.invite(&alias).await?;
            Line::Invite {
                link: link.to_link(),
                tty: std::io::stdout().is_terminal(),
            }
        }
        Act::Safety { alias } => Line::Safety {
            code: session.safety_code(&alias)?,
            contact: alias,
        },
        Act::Proxy { .. } => Line::Proxy {
            address: session.network().proxy().map(|p| format!("{p:?}")),
        },
        Act::Accept { link, alias, .. } => {
            let link = if link == "-" {
                Zeroizing::new(stdin_text(MAX_LINK)?.trim().to_owned())
            } else {
                Zeroizing::new(link)
            };
            session.accept(&link, &alias).await?;
            Line::Contact {
                alias,
                state: "accepted",
                compromised: None,
            }
        }
        Act::Send {
            alias,
            text,
            view_once,
            force,
        } => {
            // `-` alone: the text comes from standard input, so it never
            // lands in shell history or /proc/PID/cmdline.
            let text = if text == ["-"] {
                stdin_text(MAX_TEXT)?
            } else {
                Zeroizing::new(text.join(" "))
            };
            let entry = if session.is_group(&alias) {
                session.group_send(&alias, &text, view_once).await?
            } else {
                session.send(&alias, &text, view_once, force).await?
            };
            Line::Message {
                contact: alias,
                entry,
            }
        }
        Act::SendFile(args) => send_file(out, session, args, false).await?,
        Act::SendVoice(args) => send_file(out, session, args, true).await?,
        Act::Save {
            alias,
            msg_id,
            path,
        } => {
            let mut bar = crate::media::ProgressView::new(out, "download");
            let saved = session
                .save_attachment(&alias, &msg_id, &path, &mut |p| bar.on(p))
                .await?;
            bar.finish();
            Line::Saved {
                stats: saved.stats,
                path: saved.path,
                destroyed: saved.destroyed,
            }
        }
        Act::Canary { duration } => {
            let seconds = duration.0.map(|d| d.as_secs().max(60));
            let deposited = session.set_canary(seconds).await?;
            Line::Canary { seconds, deposited }
        }
        Act::Phrase(PhraseCmd::Set) => {
            let phrase = secrets::read(Secret::Phrase { new: true })?;
            let duress = secrets::read(Secret::DuressPhrase)?;
            let current = secrets::current_phrase()?;
            let contacts = session
                .set_phrase(&phrase, &duress, current.as_ref())
                .await?;
            Line::PhraseSet { contacts }
        }
        Act::Challenge { alias } => {
            session.challenge(&alias).await?;
            Line::ChallengeSent { contact: alias }
        }
        Act::Answer { alias } => {
            let phrase = secrets::read(Secret::Phrase { new: false })?;
            session.answer(&alias, &phrase).await?;
            Line::Answered { contact: alias }
        }
        Act::Alert { alias, .. } => {
            let contacts = session.alert(alias.as_deref()).await?;
            Line::Alerted { contacts }
        }
        Act::Timer { alias, duration } => {
            let secs = duration.0.map(|d| d.as_secs().max(1));
            session.set_timer(&alias, secs).await?;
            Line::Timer {
                contact: alias,
                secs,
            }
        }
        Act::Delete { alias, msg_id } => {
            session.delete(&alias, &msg_id).await?;
            Line::Deleted {
                contact: alias,
                id: msg_id,
            }
        }
        Act::Sync => {
            // Every sync starts by naming the contacts reported compromised.
            for c in session.contacts() {
                if let Some(compromise) = c.compromised {
                    out.print(&Line::CompromisedBanner {
                        contact: c.alias,
                        compromise,
                    });
                }
            }
            session.set_listener(Some(Box::new(move |ev| out.event(ev))));
            session.sync().await?;
            return Ok(());
        }
        Act::WipeAfter { attempts } => {
            session.set_wipe_after(attempts)?;
            Line::WipeAfter { attempts }
        }
        Act::Contacts => {
            for c in session.contacts() {
                out.print(&Line::Contact {
                    alias: c.alias,
                    state: c.state.as_str(),
                    compromised: c.compromised,
                });
            }
            return Ok(());
        }
        Act::Group(cmd) => return group(out, session, cmd).await,
        Act::History { alias } => {
            for entry in session.view_history(&alias)? {
                out.print(&Line::Message {
                    contact: alias.clone(),
                    entry,
                });
            }
            return Ok(());
        }
    };
    out.print(&line);
    Ok(())
}

async fn send_file(
    out: Output,
    session: &mut Session,
    args: crate::cli::FileArgs,
    voice: bool,
) -> Result<Line, Failure> {
    let (source, meta) = if voice {
        crate::media::voice_source(&args.path)?
    } else {
        crate::media::file_source(&args.path, args.keep_metadata)?
    };
    let mut bar = crate::media::ProgressView::new(out, "upload");
    let (entry, stats) = session
        .send_attachment(
            &args.alias,
            source,
            meta,
            args.view_once,
            args.force,
            &mut |p| bar.on(p),
        )
        .await?;
    bar.finish();
    out.print(&Line::Uploaded { stats });
    Ok(Line::Message {
        contact: args.alias,
        entry,
    })
}

async fn group(out: Output, session: &mut Session, cmd: GroupCmd) -> Result<(), Failure> {
    let line = match cmd {
        GroupCmd::Create { name, display } => {
            let display =
                display.unwrap_or_else(|| ferry_client::neutral_name(&mut rand_core::OsRng));
            session.create_group(&name, &display).await?;
            Line::GroupDone {
                group: name,
                what: "group_created",
            }
        }
        GroupCmd::Add { name, aliases } => {
            session.group_add(&name, &aliases).await?;
            Line::GroupDone {
                group: name,
                what: "group_asked",
            }
        }
        GroupCmd::Remove { name, member } => {
            session.group_remove(&name, &member).await?;
            Line::GroupDone {
                group: name,
                what: "group_removing",
            }
        }
        GroupCmd::Leave { name } => {
            session.group_leave(&name).await?;
            Line::GroupDone {
                group: name,
                what: "group_left",
            }
        }
        GroupCmd::Members { name } => {
            for member in session.group_members(&name)? {
                out.print(&Line::GroupMember {
                    group: name.clone(),
                    member,
                });
            }
            return Ok(());
        }
        GroupCmd::List => {
            for g in session.groups() {
                out.print(&Line::Group {
                    name: g.name,
                    members: g.members,
                    admin: g.admin,
                    joining: g.joining,
                });
            }
            return Ok(());
        }
    };
    out.print(&line);
    Ok(())
}
