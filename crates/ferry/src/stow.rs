//! `ferry recovery setup`, `ferry stow` and `ferry restore`.

use std::io::IsTerminal as _;

use ferry_client::session::{RestoreRequest, restore_files};
use ferry_client::{Network, Session};
use ferry_client::{PhraseLanguage, RecoveryPhrase};
use rand_core::OsRng;
use zeroize::Zeroizing;

use crate::cli::proxy_setting;
use crate::output::Line;
use crate::secrets::{self, Secret};
use crate::user::{Context, Failure};

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: "usage",
        message: message.into(),
    }
}

/// `ferry recovery setup`: a new phrase, shown once, confirmed on a
/// terminal by three of its words, then kept (as derived keys) in the vault.
pub(crate) async fn setup(
    ctx: &Context,
    session: &mut Session,
    lang: &str,
    pin: bool,
    witnesses: &[String],
) -> Result<Line, Failure> {
    let language = if lang == "en" {
        PhraseLanguage::English
    } else {
        PhraseLanguage::Korean
    };
    let pin = if pin {
        Some(secrets::read(Secret::RecoveryPin { new: true })?)
    } else {
        None
    };
    let phrase = RecoveryPhrase::generate(&mut OsRng, language);
    let words = phrase.words();
    ctx.out.print(&Line::RecoveryPhrase {
        words: words.clone(),
        pin: pin.is_some(),
    });
    if !ctx.out.json && std::io::stdin().is_terminal() {
        confirm(&phrase)?;
        // The words leave the screen and the scrollback.
        ctx.out.clear_terminal();
    }
    session
        .recovery_setup(&phrase, pin.as_ref(), witnesses)
        .await?;
    Ok(Line::RecoverySet)
}

/// Asks for three of the words, at random positions.
fn confirm(phrase: &RecoveryPhrase) -> Result<(), Failure> {
    for p in RecoveryPhrase::positions_to_confirm(&mut OsRng) {
        let typed = rpassword::prompt_password(format!("Word {}: ", p + 1))
            .map(Zeroizing::new)
            .map_err(|e| usage(format!("cannot read from the terminal: {e}")))?;
        if !phrase.word_matches(p, &typed) {
            return Err(usage(
                "that word does not match; nothing was set up: run `ferry recovery setup` again",
            ));
        }
    }
    Ok(())
}

/// `ferry stow`.
pub(crate) async fn stow(
    ctx: &Context,
    mut session: Session,
    with_history: bool,
) -> Result<(), Failure> {
    let relay = session.relay_url().to_owned();
    let stowed = session.stow(with_history).await?;
    ctx.out.print(&Line::Stowed {
        version: stowed.version,
        bytes: stowed.bytes,
        relay,
        deadline: stowed.deadline,
        attachments_until: stowed.attachments_until,
        messages_until: stowed.messages_until,
        restore_by: stowed.restore_by(),
    });
    Ok(())
}

/// `ferry restore`.
pub(crate) async fn restore(
    ctx: &Context,
    home: &std::path::Path,
    relay: &str,
    pin: bool,
    takeover: bool,
    proxy: Option<String>,
) -> Result<(), Failure> {
    let phrase = read_phrase()?;
    let pin = if pin {
        Some(secrets::read(Secret::RecoveryPin { new: false })?)
    } else {
        None
    };
    // Given, the proxy (or `off`) is also stored in the restored profile
    // before any of its connections.
    let given = match proxy.as_deref() {
        Some(p) => Some(
            proxy_setting(p)
                .map_err(|e| usage(e.to_string()))?
                .map_or_else(Network::direct, Network::via),
        ),
        None => None,
    };
    let network = given.clone().unwrap_or_else(Network::direct);
    let restoring = restore_files(RestoreRequest {
        home,
        relay,
        phrase: &phrase,
        pin: pin.as_ref(),
        takeover,
        network,
    })
    .await?;
    drop(phrase);
    let version = restoring.version();
    let pass = secrets::read(Secret::Passphrase {
        file: ctx.passphrase_file.as_deref(),
        new: false,
    })?;
    let mut session = Session::unlock_restored(restoring, &pass, given).await?;
    drop(pass);
    ctx.out.print(&Line::Restored { version });
    let out = ctx.out;
    session.set_listener(Some(Box::new(move |ev| out.event(ev))));
    let synced = session.sync().await;
    let _ = session.finish();
    synced?;
    Ok(())
}

/// The phrase from FERRY_RECOVERY_PHRASE, else typed without echo.
fn read_phrase() -> Result<RecoveryPhrase, Failure> {
    let text = match std::env::var("FERRY_RECOVERY_PHRASE") {
        Ok(v) => Zeroizing::new(v),
        Err(_) if std::io::stdin().is_terminal() => {
            rpassword::prompt_password("Recovery phrase (12 words): ")
                .map(Zeroizing::new)
                .map_err(|e| usage(format!("cannot read from the terminal: {e}")))?
        }
        Err(_) => return Err(usage("no terminal to ask on: set FERRY_RECOVERY_PHRASE")),
    };
    RecoveryPhrase::parse(&text).map_err(|e| Failure {
        code: "bad_phrase",
        message: e.to_string(),
    })
}
