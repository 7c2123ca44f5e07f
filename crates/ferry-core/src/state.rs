//! The engine's persisted state and what changed in it.
//!
//! A profile is saved as separate records so that an operation writes only
//! what it touched: the small *settings* record, one record per contact, one
//! per queued relay call, and the MLS key-value pairs (see
//! [`crate::mls_store`]). Every record starts with its format version.
//!
//! Format history:
//! - settings v1 (releases up to issue 6): one JSON record holding the
//!   settings, every contact and the whole outbox. [`Saved`] with such a
//!   record loads and is rewritten as v2 records by the first commit.
//! - settings v2, contact v1, action v1: the split layout.

use std::collections::BTreeSet;

use ferry_proto::MailboxId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::engine::{Action, Contact, CoreError, GroupRecord};
use crate::mls_store::MlsChange;

/// Settings record format written by this release.
pub(crate) const SETTINGS_VERSION: u32 = 2;
/// The single-record format of earlier releases.
const LEGACY_SETTINGS_VERSION: u32 = 1;
/// Contact record format.
const CONTACT_VERSION: u8 = 1;
/// Outbox record format.
const ACTION_VERSION: u8 = 1;
/// Group record format.
const GROUP_VERSION: u8 = 1;

/// A saved record's bytes, wiped on drop.
pub type Record = Zeroizing<Vec<u8>>;

/// A whole saved profile, as read from the vault.
#[derive(Default)]
pub struct Saved {
    /// The settings record.
    pub settings: Record,
    /// Every contact record.
    pub contacts: Vec<Record>,
    /// Every queued relay call, by id.
    pub outbox: Vec<(u64, Record)>,
    /// Every group chat record.
    pub groups: Vec<Record>,
    /// The MLS key-value pairs.
    pub mls: Vec<(Vec<u8>, Record)>,
}

impl std::fmt::Debug for Saved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Saved(..)")
    }
}

/// What changed since the last [`crate::Engine::take_changes`]: write it
/// to the vault in one transaction. `None` values mean "deleted".
#[derive(Default)]
pub struct Changes {
    /// The new settings record, if it changed.
    pub settings: Option<Record>,
    /// Contacts by id.
    pub contacts: Vec<(u64, Option<Record>)>,
    /// Queued relay calls by id.
    pub outbox: Vec<(u64, Option<Record>)>,
    /// Group chats by id.
    pub groups: Vec<(u64, Option<Record>)>,
    /// MLS pairs by key.
    pub mls: Vec<MlsChange>,
}

impl Changes {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.settings.is_none()
            && self.contacts.is_empty()
            && self.outbox.is_empty()
            && self.groups.is_empty()
            && self.mls.is_empty()
    }

    /// Bytes of records and values to write (keys included).
    pub fn bytes(&self) -> usize {
        let rec = |r: &Option<Record>| r.as_ref().map_or(0, |r| r.len());
        self.settings.as_ref().map_or(0, |s| s.len())
            + self.contacts.iter().map(|(_, r)| 8 + rec(r)).sum::<usize>()
            + self.outbox.iter().map(|(_, r)| 8 + rec(r)).sum::<usize>()
            + self.groups.iter().map(|(_, r)| 8 + rec(r)).sum::<usize>()
            + self
                .mls
                .iter()
                .map(|(k, r)| k.len() + rec(r))
                .sum::<usize>()
    }
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("contacts", &self.contacts.len())
            .field("outbox", &self.outbox.len())
            .field("groups", &self.groups.len())
            .field("mls", &self.mls.len())
            .finish_non_exhaustive()
    }
}

fn state_err(e: impl std::fmt::Display) -> CoreError {
    CoreError::State(e.to_string())
}

/// `version ‖ JSON`.
fn encode(version: u8, value: &impl Serialize) -> Result<Record, CoreError> {
    let mut out = Zeroizing::new(vec![version]);
    serde_json::to_writer(&mut *out, value).map_err(state_err)?;
    Ok(out)
}

fn decode<T: DeserializeOwned>(version: u8, bytes: &[u8], what: &str) -> Result<T, CoreError> {
    match bytes.split_first() {
        Some((&v, json)) if v == version => serde_json::from_slice(json).map_err(state_err),
        Some((&v, _)) => Err(CoreError::State(format!(
            "{what} record version {v} is not known (newer Ferry?)"
        ))),
        None => Err(CoreError::State(format!("{what} record is empty"))),
    }
}

/// Profile-wide settings.
#[derive(Serialize, Deserialize)]
pub(crate) struct Settings {
    version: u32,
    pub(crate) relay: String,
    /// Access token of the profile's relay, if it is a private one.
    #[serde(default)]
    pub(crate) relay_token: Option<String>,
    /// Dead-man switch interval in seconds (`None`: off).
    #[serde(default = "crate::engine::default_canary")]
    pub(crate) canary_interval: Option<u64>,
    pub(crate) next_contact: u64,
    /// Invite mailboxes this profile accepted (to refuse reuse).
    pub(crate) accepted_invites: Vec<MailboxId>,
    /// Key packages this profile gave for groups it may be added to.
    #[serde(default)]
    pub(crate) group_joins: Vec<crate::engine::Joining>,
}

/// The single-record layout of settings v1.
#[derive(Deserialize)]
struct LegacyState {
    version: u32,
    relay: String,
    #[serde(default)]
    relay_token: Option<String>,
    #[serde(default = "crate::engine::default_canary")]
    canary_interval: Option<u64>,
    next_contact: u64,
    contacts: Vec<Contact>,
    outbox: Vec<Action>,
    accepted_invites: Vec<MailboxId>,
}

/// The contacts, remembering which ones changed.
#[derive(Default)]
pub(crate) struct Contacts {
    list: Vec<Contact>,
    changed: BTreeSet<u64>,
}

impl Contacts {
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Contact> {
        self.list.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn position(&self, f: impl FnMut(&Contact) -> bool) -> Option<usize> {
        self.list.iter().position(f)
    }

    /// The contact at `idx`, for changing; it is written at the next commit.
    /// Panics like slice indexing on a bad index (callers hold a found one).
    #[allow(clippy::indexing_slicing)]
    pub(crate) fn get_mut(&mut self, idx: usize) -> &mut Contact {
        let c = &mut self.list[idx];
        self.changed.insert(c.id);
        c
    }

    pub(crate) fn push(&mut self, c: Contact) {
        self.changed.insert(c.id);
        self.list.push(c);
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Contact) -> bool) {
        let changed = &mut self.changed;
        self.list.retain(|c| {
            let k = keep(c);
            if !k {
                changed.insert(c.id);
            }
            k
        });
    }
}

impl<'a> IntoIterator for &'a Contacts {
    type Item = &'a Contact;
    type IntoIter = std::slice::Iter<'a, Contact>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

impl std::ops::Index<usize> for Contacts {
    type Output = Contact;

    #[allow(clippy::indexing_slicing)]
    fn index(&self, idx: usize) -> &Contact {
        &self.list[idx]
    }
}

/// The group chats, remembering which ones changed.
#[derive(Default)]
pub(crate) struct Groups {
    list: Vec<GroupRecord>,
    changed: BTreeSet<u64>,
}

impl Groups {
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, GroupRecord> {
        self.list.iter()
    }

    pub(crate) fn find(&self, f: impl FnMut(&&GroupRecord) -> bool) -> Option<&GroupRecord> {
        self.list.iter().find(f)
    }

    /// The group with id `id`, for changing; written at the next commit.
    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut GroupRecord> {
        let g = self.list.iter_mut().find(|g| g.id == id)?;
        self.changed.insert(id);
        Some(g)
    }

    pub(crate) fn push(&mut self, g: GroupRecord) {
        self.changed.insert(g.id);
        self.list.push(g);
    }

    pub(crate) fn remove(&mut self, id: u64) {
        self.list.retain(|g| g.id != id);
        self.changed.insert(id);
    }
}

/// Identifies a queued relay call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActionId(pub u64);

/// Relay calls still to make, oldest first, remembering what changed.
#[derive(Default)]
pub(crate) struct Outbox {
    items: Vec<(u64, Action)>,
    next: u64,
    changed: BTreeSet<u64>,
}

impl Outbox {
    pub(crate) fn push(&mut self, a: Action) {
        self.next += 1;
        self.changed.insert(self.next);
        self.items.push((self.next, a));
    }

    pub(crate) fn first(&self) -> Option<(ActionId, &Action)> {
        self.items.first().map(|(id, a)| (ActionId(*id), a))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ActionId, &Action)> {
        self.items.iter().map(|(id, a)| (ActionId(*id), a))
    }

    pub(crate) fn remove(&mut self, id: ActionId) -> bool {
        match self.items.iter().position(|(i, _)| *i == id.0) {
            Some(at) => {
                self.items.remove(at);
                self.changed.insert(id.0);
                true
            }
            None => false,
        }
    }
}

impl Extend<Action> for Outbox {
    fn extend<I: IntoIterator<Item = Action>>(&mut self, iter: I) {
        for a in iter {
            self.push(a);
        }
    }
}

/// The engine's state apart from MLS.
pub(crate) struct ProfileState {
    settings: Settings,
    settings_changed: bool,
    pub(crate) contacts: Contacts,
    pub(crate) outbox: Outbox,
    pub(crate) groups: Groups,
}

impl ProfileState {
    pub(crate) fn new(relay: &str) -> Self {
        Self {
            settings: Settings {
                version: SETTINGS_VERSION,
                relay: relay.trim_end_matches('/').to_owned(),
                relay_token: None,
                canary_interval: crate::engine::default_canary(),
                next_contact: 1,
                accepted_invites: Vec::new(),
                group_joins: Vec::new(),
            },
            settings_changed: true,
            contacts: Contacts::default(),
            outbox: Outbox::default(),
            groups: Groups::default(),
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The settings, for changing; written at the next commit.
    pub(crate) fn settings_mut(&mut self) -> &mut Settings {
        self.settings_changed = true;
        &mut self.settings
    }

    /// A fresh contact id.
    pub(crate) fn next_contact_id(&mut self) -> u64 {
        let s = self.settings_mut();
        let id = s.next_contact;
        s.next_contact += 1;
        id
    }

    /// Reads saved records (either layout).
    pub(crate) fn load(saved: &Saved) -> Result<Self, CoreError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let v: Version = serde_json::from_slice(&saved.settings).map_err(state_err)?;
        match v.version {
            SETTINGS_VERSION => {
                let settings: Settings =
                    serde_json::from_slice(&saved.settings).map_err(state_err)?;
                let mut list = saved
                    .contacts
                    .iter()
                    .map(|r| decode::<Contact>(CONTACT_VERSION, r, "contact"))
                    .collect::<Result<Vec<_>, _>>()?;
                list.sort_by_key(|c| c.id);
                let mut items = saved
                    .outbox
                    .iter()
                    .map(|(id, r)| Ok((*id, decode::<Action>(ACTION_VERSION, r, "outbox")?)))
                    .collect::<Result<Vec<_>, CoreError>>()?;
                items.sort_by_key(|(id, _)| *id);
                let next = items.last().map_or(0, |(id, _)| *id);
                let mut groups = saved
                    .groups
                    .iter()
                    .map(|r| decode::<GroupRecord>(GROUP_VERSION, r, "group"))
                    .collect::<Result<Vec<_>, _>>()?;
                groups.sort_by_key(|g| g.id);
                Ok(Self {
                    settings,
                    settings_changed: false,
                    contacts: Contacts {
                        list,
                        changed: BTreeSet::new(),
                    },
                    outbox: Outbox {
                        items,
                        next,
                        changed: BTreeSet::new(),
                    },
                    groups: Groups {
                        list: groups,
                        changed: BTreeSet::new(),
                    },
                })
            }
            LEGACY_SETTINGS_VERSION => {
                let old: LegacyState =
                    serde_json::from_slice(&saved.settings).map_err(state_err)?;
                debug_assert_eq!(old.version, LEGACY_SETTINGS_VERSION);
                let mut state = Self {
                    settings: Settings {
                        version: SETTINGS_VERSION,
                        relay: old.relay,
                        relay_token: old.relay_token,
                        canary_interval: old.canary_interval,
                        next_contact: old.next_contact,
                        accepted_invites: old.accepted_invites,
                        group_joins: Vec::new(),
                    },
                    // Everything is rewritten in the new layout.
                    settings_changed: true,
                    contacts: Contacts::default(),
                    outbox: Outbox::default(),
                    groups: Groups::default(),
                };
                for c in old.contacts {
                    state.contacts.push(c);
                }
                state.outbox.extend(old.outbox);
                Ok(state)
            }
            other => Err(CoreError::State(format!(
                "profile format version {other} is not known (newer Ferry?)"
            ))),
        }
    }

    /// Every record, for a full save.
    pub(crate) fn save(&self) -> Result<Saved, CoreError> {
        Ok(Saved {
            settings: Zeroizing::new(serde_json::to_vec(&self.settings).map_err(state_err)?),
            contacts: self
                .contacts
                .list
                .iter()
                .map(|c| encode(CONTACT_VERSION, c))
                .collect::<Result<_, _>>()?,
            outbox: self
                .outbox
                .items
                .iter()
                .map(|(id, a)| Ok((*id, encode(ACTION_VERSION, a)?)))
                .collect::<Result<_, CoreError>>()?,
            groups: self
                .groups
                .list
                .iter()
                .map(|g| encode(GROUP_VERSION, g))
                .collect::<Result<_, _>>()?,
            mls: Vec::new(),
        })
    }

    pub(crate) fn has_changes(&self) -> bool {
        self.settings_changed
            || !self.contacts.changed.is_empty()
            || !self.outbox.changed.is_empty()
            || !self.groups.changed.is_empty()
    }

    /// The records changed since the last call (MLS aside).
    pub(crate) fn take_changes(&mut self) -> Result<Changes, CoreError> {
        let settings = if std::mem::take(&mut self.settings_changed) {
            Some(Zeroizing::new(
                serde_json::to_vec(&self.settings).map_err(state_err)?,
            ))
        } else {
            None
        };
        let mut contacts = Vec::new();
        for id in std::mem::take(&mut self.contacts.changed) {
            let rec = match self.contacts.list.iter().find(|c| c.id == id) {
                Some(c) => Some(encode(CONTACT_VERSION, c)?),
                None => None,
            };
            contacts.push((id, rec));
        }
        let mut outbox = Vec::new();
        for id in std::mem::take(&mut self.outbox.changed) {
            let rec = match self.outbox.items.iter().find(|(i, _)| *i == id) {
                Some((_, a)) => Some(encode(ACTION_VERSION, a)?),
                None => None,
            };
            outbox.push((id, rec));
        }
        let mut groups = Vec::new();
        for id in std::mem::take(&mut self.groups.changed) {
            let rec = match self.groups.list.iter().find(|g| g.id == id) {
                Some(g) => Some(encode(GROUP_VERSION, g)?),
                None => None,
            };
            groups.push((id, rec));
        }
        Ok(Changes {
            settings,
            contacts,
            outbox,
            groups,
            mls: Vec::new(),
        })
    }
}
