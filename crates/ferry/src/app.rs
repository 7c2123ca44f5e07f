//! `ferry app`: the app as a local service, opened in the browser.

use std::net::SocketAddr;

use anyhow::Context as _;
use ferry_app::{App, AppConfig};

use crate::output::Line;
use crate::user::Context;

/// Runs the app until Ctrl-C (the session locks on the way out).
pub(crate) fn run(
    ctx: &Context,
    listen: SocketAddr,
    no_open: bool,
    limits: ferry_client::LockLimits,
) -> anyhow::Result<()> {
    let home = crate::user::home(ctx)?;
    let out = ctx.out;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let mut app = App::bind(AppConfig {
            home,
            listen,
            limits,
        })
        .await?;
        let mut links = app.take_links();
        // The first line is the address to open; each later one replaces
        // a link that was used (a used link is dead).
        if let Some(url) = links.recv().await {
            out.print(&Line::App { url: url.clone() });
            if !no_open {
                open_browser(&url);
            }
        }
        tokio::spawn(async move {
            while let Some(url) = links.recv().await {
                out.print(&Line::App { url });
            }
        });
        app.serve(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
        Ok(())
    })
}

/// Opens the platform's browser at `url`; failing that, the printed line
/// is all there is. The link (with its one-time token) never goes into a
/// process's arguments, which every local user can read in /proc: the
/// browser is given a file readable by this user only that redirects to
/// it (as Jupyter does); the file is removed once the browser had time to
/// read it.
fn open_browser(url: &str) {
    let Some(page) = redirect_file(url) else {
        return;
    };
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(program)
        .arg(&page)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        let _ = std::fs::remove_file(&page);
        if let Some(dir) = page.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    });
}

/// A private directory holding an HTML page that redirects to `url`.
fn redirect_file(url: &str) -> Option<std::path::PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("ferry-app-{}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).ok()?;
    let page = dir.join("open.html");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&page)
        .ok()?;
    let html = format!(
        "<!DOCTYPE html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>Home</title>"
    );
    f.write_all(html.as_bytes()).ok()?;
    Some(page)
}
