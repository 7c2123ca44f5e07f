//! The user commands: unlock the profile, call the client, print.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use ferry_client::{Session, SessionError};
use secrecy::SecretString;

use crate::output::Output;

pub(crate) struct Context {
    pub(crate) home: Option<PathBuf>,
    pub(crate) passphrase_file: Option<PathBuf>,
    pub(crate) decoy: bool,
    pub(crate) out: Output,
}

pub(crate) enum Cmd {
    Init {
        relay: String,
        token: Option<String>,
    },
    Invite {
        alias: String,
    },
    Accept {
        link: String,
        alias: String,
    },
    Send {
        alias: String,
        text: String,
        view_once: bool,
        force: bool,
    },
    SendFile {
        alias: String,
        path: PathBuf,
        voice: bool,
        view_once: bool,
        force: bool,
    },
    Save {
        alias: String,
        id: String,
        path: PathBuf,
    },
    Alert(Option<String>),
    PhraseSet,
    Canary(Option<u64>),
    Challenge(String),
    Answer(String),
    Timer {
        alias: String,
        secs: Option<u64>,
    },
    Delete {
        alias: String,
        id: String,
    },
    DuressSet {
        relay: Option<String>,
        file: Option<PathBuf>,
    },
    WipeAfter(u32),
    Sync,
    Watch(ferry_client::LockLimits),
    Contacts,
    History {
        alias: String,
    },
}

/// A user-facing failure with a stable code.
pub(crate) struct Failure {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl From<SessionError> for Failure {
    fn from(e: SessionError) -> Self {
        let message = match &e {
            SessionError::Vault(ferry_vault::VaultError::WrongPassphrase) => {
                "wrong passphrase; nothing was changed".to_owned()
            }
            SessionError::Vault(ferry_vault::VaultError::NotFound) => {
                "no profile here; run `ferry init --relay URL` first".to_owned()
            }
            SessionError::Relay(_) => {
                format!("{e}; check the relay address and your connection, then retry")
            }
            _ => e.to_string(),
        };
        Self {
            code: e.code(),
            message,
        }
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

fn home(ctx: &Context) -> anyhow::Result<PathBuf> {
    match &ctx.home {
        Some(h) => Ok(h.clone()),
        None => Ok(dirs::data_dir()
            .context("no user data directory on this system; pass --home DIR")?
            .join("ferry")
            .join("profile")),
    }
}

fn passphrase(ctx: &Context, confirm: bool) -> anyhow::Result<SecretString> {
    if let Some(p) = &ctx.passphrase_file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read passphrase file {}", p.display()))?,
        );
        return Ok(SecretString::from(
            text.trim_end_matches(['\n', '\r']).to_owned(),
        ));
    }
    if let Ok(v) = std::env::var("FERRY_PASSPHRASE") {
        return Ok(SecretString::from(v));
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no passphrase: give --passphrase-file PATH or set FERRY_PASSPHRASE");
    }
    let first = zeroize::Zeroizing::new(
        rpassword::prompt_password("Passphrase: ").context("cannot read passphrase")?,
    );
    if confirm {
        let again = zeroize::Zeroizing::new(
            rpassword::prompt_password("Again: ").context("cannot read passphrase")?,
        );
        if *again != *first {
            anyhow::bail!("the passphrases differ; nothing was created");
        }
    }
    Ok(SecretString::from(first.to_string()))
}

/// `ferry panic`: no passphrase, no questions, no network.
pub(crate) fn panic(ctx: &Context) -> anyhow::Result<()> {
    let home = home(ctx)?;
    let started = std::time::Instant::now();
    match ferry_vault::panic_wipe(&home, &mut rand_core::OsRng) {
        Ok(_) => {
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if ctx.out.json {
                println!(
                    "{}",
                    serde_json::json!({"type": "wiped", "millis": ms.round() as u64})
                );
            } else {
                println!("profile destroyed ({ms:.0} ms)");
            }
            Ok(())
        }
        Err(ferry_vault::VaultError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
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

/// A secret from the environment (scripts) or typed at a terminal.
fn secret_input(var: &str, prompt: &str, confirm: bool) -> Result<SecretString, Failure> {
    if let Ok(v) = std::env::var(var) {
        return Ok(SecretString::from(v));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure {
            code: "usage",
            message: format!("no terminal to ask on: set {var}"),
        });
    }
    let a =
        zeroize::Zeroizing::new(rpassword::prompt_password(prompt).map_err(anyhow::Error::from)?);
    if confirm {
        let b = zeroize::Zeroizing::new(
            rpassword::prompt_password("Again: ").map_err(anyhow::Error::from)?,
        );
        if *a != *b {
            return Err(Failure {
                code: "usage",
                message: "the two entries differ; nothing was changed".into(),
            });
        }
    }
    Ok(SecretString::from(a.to_string()))
}

pub(crate) fn run(ctx: Context, cmd: Cmd) -> anyhow::Result<()> {
    let out = ctx.out;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match rt.block_on(execute(&ctx, cmd)) {
        Ok(()) => Ok(()),
        Err(f) => {
            out.error(f.code, &f.message);
            std::process::exit(1);
        }
    }
}

async fn execute(ctx: &Context, cmd: Cmd) -> Result<(), Failure> {
    let out = ctx.out;
    let home = home(ctx)?;
    if let Cmd::Init { relay, token } = &cmd {
        let pass = passphrase(ctx, true)?;
        Session::init(&home, &pass, relay, token.clone())?;
        if out.json {
            println!(
                "{}",
                serde_json::json!({"type": "initialized", "relay": relay})
            );
        } else {
            println!("profile created; its mailboxes will live on {relay}");
        }
        return Ok(());
    }
    let mut profile = open(ctx, &home).await?;
    if let Cmd::Watch(limits) = cmd {
        return watch(ctx, &home, profile, limits).await;
    }
    let result = command(ctx, &mut profile, cmd).await;
    // Keep both slots the same size whatever happened.
    let _ = profile.finish();
    result
}

/// Unlocks the profile (or, with `--decoy`, the decoy through it).
async fn open(ctx: &Context, home: &std::path::Path) -> Result<Session, Failure> {
    let pass = passphrase(ctx, false)?;
    let mut real = Session::unlock(home, &pass)?;
    drop(pass);
    // Silent: after a duress unlock this warns the destroyed profile's
    // contacts; after a real one it renews the dead-man switches. It never
    // prints.
    real.after_unlock().await;
    if !ctx.decoy {
        return Ok(real);
    }
    real.decoy()?.ok_or_else(|| Failure {
        code: "no_decoy",
        message: "no duress passphrase is set; run `ferry duress set` first".to_owned(),
    })
}

async fn watch(
    ctx: &Context,
    home: &std::path::Path,
    mut profile: Session,
    limits: ferry_client::LockLimits,
) -> Result<(), Failure> {
    let out = ctx.out;
    loop {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        profile.set_listener(Some(Box::new(move |ev| out.event(ev))));
        let reason = profile.watch(stop, limits).await?;
        let Some(reason) = reason else {
            let _ = profile.finish();
            return Ok(());
        };
        // Locked: close the vault and forget every key before anything else.
        let _ = profile.lock(reason);
        if out.json {
            println!(
                "{}",
                serde_json::json!({"type": "locked", "reason": reason.as_str()})
            );
        } else {
            println!(
                "locked ({}); unlock again to keep watching",
                reason.as_str().replace('_', " ")
            );
        }
        // Only a person at a terminal can unlock again; a passphrase from
        // a file or the environment is not reused for that.
        if ctx.passphrase_file.is_some()
            || std::env::var_os("FERRY_PASSPHRASE").is_some()
            || !std::io::stdin().is_terminal()
        {
            std::process::exit(3);
        }
        profile = open(ctx, home).await?;
    }
}

async fn command(ctx: &Context, profile: &mut Session, cmd: Cmd) -> Result<(), Failure> {
    let out = ctx.out;
    match cmd {
        Cmd::Init { .. } => {}
        Cmd::DuressSet { relay, file } => {
            let duress = match file {
                Some(f) => SecretString::from(
                    std::fs::read_to_string(&f)
                        .map_err(|e| Failure {
                            code: "usage",
                            message: format!("cannot read {}: {e}", f.display()),
                        })?
                        .trim_end_matches(['\n', '\r'])
                        .to_owned(),
                ),
                None => match std::env::var("FERRY_DURESS_PASSPHRASE") {
                    Ok(v) => SecretString::from(v),
                    Err(_) if std::io::stdin().is_terminal() => {
                        let a = zeroize::Zeroizing::new(
                            rpassword::prompt_password("Duress passphrase: ")
                                .map_err(anyhow::Error::from)?,
                        );
                        let b = zeroize::Zeroizing::new(
                            rpassword::prompt_password("Again: ").map_err(anyhow::Error::from)?,
                        );
                        if *a != *b {
                            return Err(Failure {
                                code: "usage",
                                message: "the passphrases differ; nothing was changed".into(),
                            });
                        }
                        SecretString::from(a.to_string())
                    }
                    Err(_) => {
                        return Err(Failure {
                            code: "usage",
                            message: "no duress passphrase: give --duress-passphrase-file or FERRY_DURESS_PASSPHRASE".into(),
                        });
                    }
                },
            };
            let relay = match relay {
                Some(r) => r,
                None => profile.relay_url().to_owned(),
            };
            profile.set_duress(&duress, &relay)?;
            if out.json {
                println!("{}", serde_json::json!({"type": "duress_set"}));
            } else {
                println!("duress passphrase set; prepare the decoy with `ferry --decoy ...`");
            }
        }
        Cmd::Invite { alias } => {
            let link = profile.invite(&alias).await?;
            out.invite(&link.to_link(), std::io::stdout().is_terminal());
        }
        Cmd::Accept { link, alias } => {
            profile.accept(&link, &alias).await?;
            out.contact(&alias, "accepted", None);
        }
        Cmd::Send {
            alias,
            text,
            view_once,
            force,
        } => {
            let entry = profile.send(&alias, &text, view_once, force).await?;
            out.message(&alias, &entry);
        }
        Cmd::SendFile {
            alias,
            path,
            voice,
            view_once,
            force,
        } => {
            let (source, meta) = if voice {
                crate::media::voice_source(&path)?
            } else {
                crate::media::file_source(&path)?
            };
            let mut bar = crate::media::ProgressView::new(out, "upload");
            let (entry, stats) = profile
                .send_attachment(&alias, source, meta, view_once, force, &mut |p| bar.on(p))
                .await?;
            bar.finish();
            out.transfer("uploaded", &stats, None);
            out.message(&alias, &entry);
        }
        Cmd::Save { alias, id, path } => {
            let mut bar = crate::media::ProgressView::new(out, "download");
            let saved = profile
                .save_attachment(&alias, &id, &path, &mut |p| bar.on(p))
                .await?;
            bar.finish();
            out.transfer("saved", &saved.stats, Some((&saved.path, saved.destroyed)));
        }
        Cmd::Canary(secs) => {
            let n = profile.set_canary(secs).await?;
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"type": "canary", "seconds": secs, "deposited": n})
                );
            } else {
                match secs {
                    Some(_) => {
                        println!("{n} contact(s) are warned if you do not unlock within that time")
                    }
                    None => println!("dead-man switch off"),
                }
            }
        }
        Cmd::PhraseSet => {
            let phrase = secret_input("FERRY_PHRASE", "Phrase: ", true)?;
            let duress = secret_input("FERRY_DURESS_PHRASE", "Duress phrase: ", true)?;
            let current = match std::env::var("FERRY_CURRENT_PHRASE") {
                Ok(v) => Some(SecretString::from(v)),
                Err(_) if std::io::stdin().is_terminal() => {
                    let c = zeroize::Zeroizing::new(
                        rpassword::prompt_password("Current phrase (empty if none yet): ")
                            .map_err(anyhow::Error::from)?,
                    );
                    (!c.is_empty()).then(|| SecretString::from(c.to_string()))
                }
                Err(_) => None,
            };
            let n = profile
                .set_phrase(&phrase, &duress, current.as_ref())
                .await?;
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"type": "phrase_set", "contacts": n})
                );
            } else {
                println!("{n} contact(s) can now challenge you; the phrases are not stored here");
            }
        }
        Cmd::Challenge(alias) => {
            profile.challenge(&alias).await?;
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"type": "challenge_sent", "contact": alias})
                );
            } else {
                println!("challenge sent; the result appears with your next sync");
            }
        }
        Cmd::Answer(alias) => {
            let phrase = secret_input("FERRY_PHRASE", "Phrase: ", false)?;
            profile.answer(&alias, &phrase).await?;
            // Identical whatever phrase was typed.
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"type": "answered", "contact": alias})
                );
            } else {
                println!("answer sent");
            }
        }
        Cmd::Alert(alias) => {
            let n = profile.alert(alias.as_deref()).await?;
            if out.json {
                println!("{}", serde_json::json!({"type": "alerted", "contacts": n}));
            } else {
                println!("warned {n} contact(s) that this device may be compromised");
            }
        }
        Cmd::Timer { alias, secs } => {
            profile.set_timer(&alias, secs).await?;
            out.timer(&alias, secs);
        }
        Cmd::Delete { alias, id } => {
            profile.delete(&alias, &id).await?;
            out.deleted(&alias, &id);
        }
        Cmd::Sync => {
            // Every sync starts by naming the contacts reported compromised.
            for c in profile.contacts() {
                if let Some(k) = c.compromised {
                    out.compromised_banner(&c.alias, k);
                }
            }
            profile.set_listener(Some(Box::new(move |ev| out.event(ev))));
            profile.sync().await?;
        }
        Cmd::Watch(_) => {}
        Cmd::WipeAfter(n) => {
            profile.set_wipe_after(n)?;
            if out.json {
                println!(
                    "{}",
                    serde_json::json!({"type": "wipe_after", "attempts": n})
                );
            } else if n == 0 {
                println!("wrong passphrases will never wipe this profile");
            } else {
                println!("this profile is destroyed after {n} wrong passphrases in a row");
            }
        }
        Cmd::Contacts => {
            for c in profile.contacts() {
                out.contact(&c.alias, c.state.as_str(), c.compromised);
            }
        }
        Cmd::History { alias } => {
            for e in profile.view_history(&alias)? {
                out.message(&alias, &e);
            }
        }
    }
    Ok(())
}
