//! The unlocked session, owned by one thread of its own.
//!
//! A `Session` is one profile with its engine in memory; it is driven by
//! one task at a time. The app's request handlers send it jobs (closures
//! over `&mut Session`) through a queue. Between jobs the session watches
//! its relay (live push, expiry, canaries, key refreshes); a job arriving
//! stops the watch, runs, and the watch goes on. The auto-lock limits run
//! across those pauses: only jobs marked as local input (a person using
//! the page) count as activity, never what the network pushes or the
//! page refreshing itself because of it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ferry_client::{LockLimits, LockReason, Session, SessionError};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A future that borrows the session.
pub(crate) type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

type Job = Box<dyn for<'a> FnOnce(&'a mut Session) -> LocalBoxFuture<'a, ()> + Send>;

enum Msg {
    Job { job: Job, input: bool },
    Lock,
}

/// The session has locked (or its thread ended).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gone;

/// How to reach the session thread.
#[derive(Clone)]
pub(crate) struct SessionHandle {
    tx: mpsc::Sender<Msg>,
}

impl SessionHandle {
    /// Runs `f` on the session and returns what it returns. `input`: the
    /// request is someone using the page (it delays the idle lock).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        input: bool,
        f: impl for<'a> FnOnce(&'a mut Session) -> LocalBoxFuture<'a, T> + Send + 'static,
    ) -> Result<T, Gone> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |s| {
            Box::pin(async move {
                let v = f(s).await;
                let _ = tx.send(v);
            })
        });
        self.tx
            .send(Msg::Job { job, input })
            .await
            .map_err(|_| Gone)?;
        rx.await.map_err(|_| Gone)
    }

    /// Locks the session now (the profile's keys leave memory).
    pub(crate) async fn lock(&self) {
        let _ = self.tx.send(Msg::Lock).await;
    }
}

/// Opens a session on a thread of its own; `ended` is called on that
/// thread once it has locked.
pub(crate) async fn start(
    open: impl FnOnce() -> LocalBoxFuture<'static, Result<Session, SessionError>> + Send + 'static,
    prepare: impl FnOnce(&mut Session) + Send + 'static,
    limits: LockLimits,
    ended: impl FnOnce(LockReason) + Send + 'static,
) -> Result<SessionHandle, SessionError> {
    let (ready_tx, ready_rx) = oneshot::channel();
    let (tx, rx) = mpsc::channel::<Msg>(64);
    let spawned = std::thread::Builder::new()
        .name("ferry-session".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(SessionError::Relay(
                        ferry_client::ClientError::Protocol(format!("no runtime: {e}")),
                    )));
                    return;
                }
            };
            rt.block_on(async move {
                let mut session = match open().await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                prepare(&mut session);
                if ready_tx.send(Ok(())).is_err() {
                    let _ = session.lock(LockReason::Idle);
                    return;
                }
                let reason = serve(&mut session, rx, limits).await;
                let _ = session.lock(reason);
                ended(reason);
            });
        });
    if spawned.is_err() {
        return Err(SessionError::OutOfStep);
    }
    match ready_rx.await {
        Ok(Ok(())) => Ok(SessionHandle { tx }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(SessionError::OutOfStep),
    }
}

/// Runs jobs and watches between them until the session must lock.
async fn serve(
    session: &mut Session,
    mut rx: mpsc::Receiver<Msg>,
    limits: LockLimits,
) -> LockReason {
    let started = Instant::now();
    let mut last_input = started;
    let mut backoff = Duration::from_millis(500);
    loop {
        let now = Instant::now();
        let idle_left = (last_input + limits.idle).saturating_duration_since(now);
        let max_left = (started + limits.max_unlocked).saturating_duration_since(now);
        if max_left.is_zero() {
            return LockReason::MaxUnlocked;
        }
        if idle_left.is_zero() {
            return LockReason::Idle;
        }
        let left = LockLimits {
            idle: idle_left,
            max_unlocked: max_left,
        };
        let mut next = None;
        let watched = session
            .watch(
                async {
                    next = rx.recv().await;
                },
                left,
            )
            .await;
        let msg = match watched {
            Ok(None) => next,
            Ok(Some(reason)) => return reason,
            Err(e) => {
                tracing::warn!(code = e.code(), "watching the relay failed; retrying");
                // The relay or the proxy is down: serve jobs meanwhile and
                // try again a little later.
                if session.wiped() {
                    return LockReason::Wiped;
                }
                let wait = tokio::time::sleep(backoff.min(idle_left).min(max_left));
                backoff = (backoff * 2).min(Duration::from_secs(30));
                tokio::select! {
                    m = rx.recv() => m,
                    () = wait => continue,
                }
            }
        };
        match msg {
            Some(Msg::Job { job, input }) => {
                if input {
                    last_input = Instant::now();
                }
                job(session).await;
                if session.wiped() {
                    return LockReason::Wiped;
                }
            }
            // Asked to lock, or the app is going away.
            Some(Msg::Lock) | None => return LockReason::Asked,
        }
    }
}
