//! A bounded in-memory cache of mailbox keys, so a request does not need a
//! store read just to find the key that must have signed it.
//!
//! Only *secured* mailboxes are cached: their recipient and sender keys can
//! never change again, so a cached record is never wrong about keys. A deleted
//! mailbox is forgotten here by the node that deleted it; on any other node
//! (scale-out) the store itself refuses operations on it.

use std::collections::HashMap;
use std::sync::Mutex;

use ferry_proto::MailboxId;

use crate::store::MailboxRecord;

/// Default bound: about 100 bytes an entry.
pub(crate) const RECORD_CACHE_ENTRIES: usize = 100_000;

pub(crate) struct RecordCache {
    map: Mutex<HashMap<MailboxId, MailboxRecord>>,
    cap: usize,
}

impl RecordCache {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            cap,
        }
    }

    pub(crate) fn get(&self, id: &MailboxId) -> Option<MailboxRecord> {
        self.map.lock().ok()?.get(id).copied()
    }

    pub(crate) fn put(&self, id: MailboxId, rec: MailboxRecord) {
        if rec.sender_key.is_none() {
            return;
        }
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= self.cap {
                // Crude but bounded: start over rather than track recency.
                m.clear();
            }
            m.insert(id, rec);
        }
    }

    pub(crate) fn forget(&self, id: &MailboxId) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(id);
        }
    }
}
