//! Live push: which WebSocket connections follow which mailboxes.
//!
//! After a message is durably stored, the send path publishes it here and
//! every subscribed connection gets it through a bounded queue. A connection
//! that falls behind is flagged instead of buffering without limit; it then
//! re-reads what it missed from the store, so nothing is lost and memory stays
//! bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use ferry_proto::{MailboxId, Seq};
use tokio::sync::{Notify, mpsc};

/// A freshly stored message on its way to subscribers.
#[derive(Clone)]
pub(crate) struct Pushed {
    pub(crate) mailbox: MailboxId,
    pub(crate) seq: Seq,
    pub(crate) payload: Bytes,
}

/// A connection's end of the hub.
pub(crate) struct Subscriber {
    pub(crate) id: u64,
    pub(crate) queue: mpsc::Sender<Pushed>,
    pub(crate) lagged: AtomicBool,
    pub(crate) wake: Notify,
}

#[derive(Default)]
pub(crate) struct Hub {
    subs: RwLock<HashMap<MailboxId, Vec<Arc<Subscriber>>>>,
    next_id: AtomicU64,
}

impl Hub {
    pub(crate) fn new_subscriber(&self, queue: mpsc::Sender<Pushed>) -> Arc<Subscriber> {
        Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            queue,
            lagged: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    pub(crate) fn register(&self, sub: &Arc<Subscriber>, mailboxes: &[MailboxId]) {
        if let Ok(mut subs) = self.subs.write() {
            for m in mailboxes {
                let list = subs.entry(*m).or_default();
                if !list.iter().any(|s| s.id == sub.id) {
                    list.push(Arc::clone(sub));
                }
            }
        }
    }

    pub(crate) fn unregister(&self, sub_id: u64, mailboxes: impl IntoIterator<Item = MailboxId>) {
        if let Ok(mut subs) = self.subs.write() {
            for m in mailboxes {
                if let Some(list) = subs.get_mut(&m) {
                    list.retain(|s| s.id != sub_id);
                    if list.is_empty() {
                        subs.remove(&m);
                    }
                }
            }
        }
    }

    /// Hands a stored message to every subscriber; returns how many got it.
    pub(crate) fn publish(&self, msg: Pushed) -> usize {
        let Ok(subs) = self.subs.read() else {
            return 0;
        };
        let Some(list) = subs.get(&msg.mailbox) else {
            return 0;
        };
        let mut n = 0;
        for s in list {
            match s.queue.try_send(msg.clone()) {
                Ok(()) => n += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    s.lagged.store(true, Ordering::Release);
                    s.wake.notify_one();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        n
    }
}
