//! The unlocked session, owned by one thread of its own.
//!
//! A `Session` is one profile with its engine in memory; it is driven by
//! one task at a time. The app's request handlers send it jobs (closures
//! over `&mut Session`) through a queue; `Session::serve` runs them
//! between pushes on the same live connection (live push, expiry,
//! canaries and key refreshes go on around them). The auto-lock limits run
//! across those pauses: only jobs marked as local input (a person using
//! the page) count as activity, never what the network pushes or the
//! page refreshing itself because of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferry_client::{Job, LockLimits, LockReason, Session, SessionError};
use tokio::sync::{Notify, mpsc, oneshot};

/// A future that borrows the session.
pub(crate) type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// The session has locked (or its thread ended).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gone;

/// How to reach the session thread.
#[derive(Clone)]
pub(crate) struct SessionHandle {
    tx: mpsc::Sender<Job>,
    lock: Arc<Notify>,
    /// When a person last used the app (for the idle lock across
    /// reconnections), in milliseconds since the session opened.
    last_input: Arc<AtomicU64>,
    opened: Instant,
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
        if input {
            let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last_input.fetch_max(ms, Ordering::Relaxed);
        }
        let job = Job {
            run: Box::new(move |s| {
                Box::pin(async move {
                    let v = f(s).await;
                    let _ = tx.send(v);
                })
            }),
            input,
        };
        self.tx.send(job).await.map_err(|_| Gone)?;
        rx.await.map_err(|_| Gone)
    }

    /// Locks the session now (the profile's keys leave memory).
    pub(crate) fn lock(&self) {
        self.lock.notify_one();
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
    let (tx, rx) = mpsc::channel::<Job>(64);
    let handle = SessionHandle {
        tx,
        lock: Arc::new(Notify::new()),
        last_input: Arc::new(AtomicU64::new(0)),
        opened: Instant::now(),
    };
    let inner = handle.clone();
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
                    let _ = session.lock(LockReason::Asked);
                    return;
                }
                let reason = serve(&mut session, rx, &inner, limits).await;
                let _ = session.lock(reason);
                ended(reason);
            });
        });
    if spawned.is_err() {
        return Err(SessionError::OutOfStep);
    }
    match ready_rx.await {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(SessionError::OutOfStep),
    }
}

/// Watches and runs jobs on one connection until the session must lock;
/// while the relay cannot be reached, runs jobs and tries again later.
async fn serve(
    session: &mut Session,
    mut rx: mpsc::Receiver<Job>,
    h: &SessionHandle,
    limits: LockLimits,
) -> LockReason {
    let mut backoff = Duration::from_millis(500);
    loop {
        // The limits run from the unlock and from the last input, across
        // every reconnection.
        let now = h.opened.elapsed();
        let last = Duration::from_millis(h.last_input.load(Ordering::Relaxed));
        let idle_left = (last + limits.idle).saturating_sub(now);
        let max_left = limits.max_unlocked.saturating_sub(now);
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
        match session.serve(h.lock.notified(), left, Some(&mut rx)).await {
            // Asked to lock, or the app is going away.
            Ok(None) => return LockReason::Asked,
            Ok(Some(reason)) => return reason,
            Err(e) => {
                tracing::warn!(code = e.code(), "watching the relay failed; retrying");
                if session.wiped() {
                    return LockReason::Wiped;
                }
                // The relay or the proxy is down: serve jobs meanwhile and
                // try again a little later.
                let wait = tokio::time::sleep(backoff.min(idle_left).min(max_left));
                backoff = (backoff * 2).min(Duration::from_secs(30));
                tokio::pin!(wait);
                // Disappearing messages go on time while offline too.
                let mut expiry = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        () = &mut wait => break,
                        _ = expiry.tick() => {
                            if session.wiped() {
                                return LockReason::Wiped;
                            }
                            let _ = session.expire();
                        }
                        () = h.lock.notified() => return LockReason::Asked,
                        job = rx.recv() => match job {
                            Some(job) => {
                                (job.run)(session).await;
                                if session.wiped() {
                                    return LockReason::Wiped;
                                }
                            }
                            None => return LockReason::Asked,
                        },
                    }
                }
            }
        }
    }
}
