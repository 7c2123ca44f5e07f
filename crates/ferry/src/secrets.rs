//! Every secret the CLI asks for, read in one place: from a file given on
//! the command line, else an environment variable (scripts), else typed at
//! a terminal without echo. Nothing is read from a file that was not named.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::user::Failure;

/// Which secret.
pub(crate) enum Secret<'a> {
    /// The profile's passphrase (`new`: typed twice).
    Passphrase { file: Option<&'a Path>, new: bool },
    /// A new duress passphrase (typed twice).
    Duress { file: Option<&'a PathBuf> },
    /// The "prove it's you" phrase (`new`: typed twice).
    Phrase { new: bool },
    /// A new duress phrase (typed twice).
    DuressPhrase,
    /// The stowed account's PIN (`new`: typed twice).
    RecoveryPin { new: bool },
}

impl Secret<'_> {
    fn parts(&self) -> (Option<&Path>, &'static str, &'static str, bool) {
        match self {
            Self::Passphrase { file, new } => (*file, "FERRY_PASSPHRASE", "Passphrase: ", *new),
            Self::Duress { file } => (
                file.map(PathBuf::as_path),
                "FERRY_DURESS_PASSPHRASE",
                "Duress passphrase: ",
                true,
            ),
            Self::Phrase { new } => (None, "FERRY_PHRASE", "Phrase: ", *new),
            Self::DuressPhrase => (None, "FERRY_DURESS_PHRASE", "Duress phrase: ", true),
            Self::RecoveryPin { new } => (None, "FERRY_RECOVERY_PIN", "PIN: ", *new),
        }
    }
}

fn usage(message: String) -> Failure {
    Failure {
        code: "usage",
        message,
    }
}

fn prompt(text: &str) -> Result<Zeroizing<String>, Failure> {
    rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|e| usage(format!("cannot read from the terminal: {e}")))
}

/// Reads `which`.
pub(crate) fn read(which: Secret<'_>) -> Result<SecretString, Failure> {
    let (file, var, label, confirm) = which.parts();
    if let Some(p) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(p)
                .map_err(|e| usage(format!("cannot read {}: {e}", p.display())))?,
        );
        return Ok(SecretString::from(
            text.trim_end_matches(['\n', '\r']).to_owned(),
        ));
    }
    if let Ok(v) = std::env::var(var) {
        return Ok(SecretString::from(v));
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "no terminal to ask on: set {var}{}",
            if matches!(which, Secret::Passphrase { .. }) {
                " or give --passphrase-file PATH"
            } else {
                ""
            }
        )));
    }
    let first = prompt(label)?;
    if confirm && *prompt("Again: ")? != *first {
        return Err(usage("the two entries differ; nothing was changed".into()));
    }
    Ok(SecretString::from(first.to_string()))
}

/// The current phrase, needed only to change one already given: from
/// FERRY_CURRENT_PHRASE, else asked on a terminal (empty: none yet).
pub(crate) fn current_phrase() -> Result<Option<SecretString>, Failure> {
    if let Ok(v) = std::env::var("FERRY_CURRENT_PHRASE") {
        return Ok(Some(SecretString::from(v)));
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let c = prompt("Current phrase (empty if none yet): ")?;
    Ok((!c.is_empty()).then(|| SecretString::from(c.to_string())))
}
