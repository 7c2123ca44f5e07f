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
/// is all there is.
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
