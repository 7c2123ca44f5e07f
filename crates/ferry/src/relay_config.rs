//! `ferry relay --config FILE`: a TOML file whose keys are the relay's long
//! option names. Its settings are turned into options placed before those
//! on the command line, and parsed by the same parsers; a later option
//! overrides an earlier one, so the command line wins. Unknown keys and
//! values of the wrong kind are refused with the file's name.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{Context as _, bail};
use clap::CommandFactory as _;

use crate::cli::Cli;

/// The position of the command in `argv` (after the program name and
/// global options).
fn command_at(argv: &[OsString]) -> Option<usize> {
    // The top-level options that take a value (whose value is not a
    // command), as the command-line model declares them.
    let with_value: Vec<String> = Cli::command()
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    let mut i = 1;
    while let Some(a) = argv.get(i) {
        let s = a.to_string_lossy();
        if with_value.iter().any(|w| *w == s) {
            i += 2;
        } else if s.starts_with('-') {
            i += 1;
        } else {
            return Some(i);
        }
    }
    None
}

/// For `ferry relay ... --config FILE ...`, the command line with the
/// file's options in front of the relay's own (before clap sees any of
/// it, so options split between file and command line are checked
/// together); any other command line as it is.
pub(crate) fn preprocess(argv: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(at) = command_at(&argv) else {
        return Ok(argv);
    };
    if argv.get(at).is_none_or(|a| a != "relay") {
        return Ok(argv);
    }
    let mut file = None;
    let mut rest = argv.iter().skip(at + 1);
    while let Some(a) = rest.next() {
        let s = a.to_string_lossy();
        if s == "--config" {
            file = rest.next().cloned();
        } else if let Some(v) = s.strip_prefix("--config=") {
            file = Some(OsString::from(v));
        }
    }
    match file {
        Some(f) => expand(argv, Path::new(&f), at),
        None => Ok(argv),
    }
}

/// The command line with the file's options inserted right after the
/// `relay` command at `at`.
fn expand(argv: Vec<OsString>, file: &Path, at: usize) -> anyhow::Result<Vec<OsString>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the relay config {}", file.display()))?;
    let options = options(&text).with_context(|| format!("in {}", file.display()))?;
    let mut out = argv;
    let tail = out.split_off(at + 1);
    out.extend(options);
    out.extend(tail);
    Ok(out)
}

/// The options a config file stands for.
fn options(text: &str) -> anyhow::Result<Vec<OsString>> {
    let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
    let command = Cli::command();
    let relay = command
        .find_subcommand("relay")
        .context("no relay command")?;
    let mut out = Vec::new();
    for (key, value) in table {
        let name = key.replace('_', "-");
        let Some(arg) = relay
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()))
        else {
            bail!(
                "unknown setting `{key}` (the relay's options are listed by `ferry relay --help`)"
            );
        };
        if name == "config" {
            bail!("a config file cannot name another one");
        }
        let flag = format!("--{name}");
        let takes_value = arg.get_action().takes_values();
        match value {
            toml::Value::Boolean(on) if !takes_value => {
                if on {
                    out.push(flag.into());
                }
            }
            toml::Value::String(s) if takes_value => {
                out.push(flag.into());
                out.push(s.into());
            }
            toml::Value::Integer(n) if takes_value => {
                out.push(flag.into());
                out.push(n.to_string().into());
            }
            toml::Value::Float(f) if takes_value => {
                out.push(flag.into());
                out.push(f.to_string().into());
            }
            other => bail!(
                "`{key}` cannot be {}",
                match other {
                    toml::Value::Boolean(_) => "true or false",
                    toml::Value::Array(_) => "a list",
                    toml::Value::Table(_) => "a table",
                    _ => "this value",
                }
            ),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        options(text)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn keys_are_option_names() {
        let got = args(
            "listen = \"0.0.0.0:443\"\nmax_messages = 50\nrate-per-key = 2.5\nno-fsync = true\nplain-http = false\n",
        );
        assert!(got.windows(2).any(|w| w == ["--listen", "0.0.0.0:443"]));
        assert!(got.windows(2).any(|w| w == ["--max-messages", "50"]));
        assert!(got.windows(2).any(|w| w == ["--rate-per-key", "2.5"]));
        assert!(got.contains(&"--no-fsync".to_owned()));
        assert!(!got.contains(&"--plain-http".to_owned()));
    }

    #[test]
    fn mistakes_are_named() {
        for (text, says) in [
            ("lisen = \"x\"", "unknown setting `lisen`"),
            ("no-fsync = \"yes\"", "`no-fsync` cannot be"),
            ("listen = true", "`listen` cannot be true or false"),
            ("config = \"other.toml\"", "cannot name another"),
            ("listen = ", "not valid TOML"),
        ] {
            let err = format!("{:#}", options(text).unwrap_err());
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn the_command_line_wins() {
        use clap::Parser as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(
            &file,
            "max-messages = 50\nmessage-ttl = \"2d\"\ntls-key = \"k.pem\"\n",
        )
        .unwrap();
        // A global option whose value is `relay`, and an option pair split
        // between the file and the command line.
        let argv: Vec<OsString> = [
            "ferry",
            "--home",
            "relay",
            "relay",
            "--max-messages",
            "7",
            "--tls-cert",
            "c.pem",
            "--config",
            file.to_str().unwrap(),
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let cli = Cli::try_parse_from(preprocess(argv).unwrap()).unwrap();
        let crate::cli::Command::Relay(r) = cli.command else {
            panic!("not relay")
        };
        assert_eq!(r.max_messages, 7);
        assert_eq!(r.message_ttl, std::time::Duration::from_secs(2 * 86_400));
        assert_eq!(r.tls_key.as_deref(), Some(Path::new("k.pem")));
        assert_eq!(cli.home.as_deref(), Some(Path::new("relay")));
    }
}
