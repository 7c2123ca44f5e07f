//! Who may commit what. Every member runs the same check on every commit,
//! against the roles as they stood before it, so an unauthorized commit is
//! skipped by all members alike and the group never forks.

use openmls::prelude::{LeafNodeIndex, MlsGroup, Proposal, Sender, StagedCommit};

use super::roles::{Role, Settings};

/// Why a commit was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Not from a member of the group.
    #[error("the commit does not come from a member")]
    NotFromMember,
    /// Adds, removes or changes settings without being an admin.
    #[error("only an admin may add, remove or change settings")]
    NotAdmin,
    /// Makes or unmakes an admin or owner without being an owner, or
    /// removes an owner without being one.
    #[error("only an owner may change who is an admin or owner")]
    NotOwner,
    /// A proposal kind Ferry never uses.
    #[error("the commit holds a proposal Ferry does not use")]
    Unsupported,
    /// The settings after it cannot be read, or no owner would be left.
    #[error("the commit leaves the group's settings unusable")]
    BadSettings,
}

fn key_at(group: &MlsGroup, index: LeafNodeIndex) -> Option<Vec<u8>> {
    group.member_at(index).map(|m| m.signature_key)
}

fn member_key(group: &MlsGroup, sender: &Sender) -> Option<Vec<u8>> {
    match sender {
        Sender::Member(i) => key_at(group, *i),
        _ => None,
    }
}

/// Checks `staged`, a commit to `group` (still at the epoch before it),
/// against the roles in `before`.
pub fn authorize(
    group: &MlsGroup,
    before: &Settings,
    committer: &Sender,
    staged: &StagedCommit,
) -> Result<(), Refusal> {
    let committer = member_key(group, committer).ok_or(Refusal::NotFromMember)?;
    let role = before.role_of(&committer);
    // Only admins commit (the relay takes commits only from admin keys; a
    // member's key refresh is a proposal an admin commits).
    if !role.is_admin() {
        return Err(Refusal::NotAdmin);
    }
    let after = Settings::from_extensions(staged.group_context().extensions())
        .map_err(|_| Refusal::BadSettings)?;
    let mut removed_keys: Vec<Vec<u8>> = Vec::new();
    for q in staged.queued_proposals() {
        let proposer = member_key(group, q.sender()).ok_or(Refusal::NotFromMember)?;
        match q.proposal() {
            // A member refreshes its own leaf (MLS makes sure it is its own).
            Proposal::Update(_) => {}
            Proposal::Remove(r) => {
                let removed = key_at(group, r.removed()).ok_or(Refusal::NotFromMember)?;
                removed_keys.push(removed.clone());
                // Asking to leave is anyone's right; removing someone else
                // takes an admin, and an owner takes an owner.
                if removed != proposer {
                    if !role.is_admin() || !before.role_of(&proposer).is_admin() {
                        return Err(Refusal::NotAdmin);
                    }
                    if before.role_of(&removed) == Role::Owner
                        && (role != Role::Owner || before.role_of(&proposer) != Role::Owner)
                    {
                        return Err(Refusal::NotOwner);
                    }
                } else if !role.is_admin() && proposer != committer {
                    return Err(Refusal::NotAdmin);
                }
            }
            Proposal::Add(_) => {
                if !role.is_admin() || !before.role_of(&proposer).is_admin() {
                    return Err(Refusal::NotAdmin);
                }
            }
            Proposal::GroupContextExtensions(_) => {
                if !role.is_admin() || !before.role_of(&proposer).is_admin() {
                    return Err(Refusal::NotAdmin);
                }
            }
            _ => return Err(Refusal::Unsupported),
        }
    }
    // Some owner stays in the group (the last one cannot leave or be
    // removed before handing ownership on).
    let owner_left = after.listed().iter().any(|(k, r)| {
        *r == Role::Owner
            && !removed_keys.contains(k)
            && group.members().any(|m| m.signature_key == *k)
    });
    if !owner_left {
        return Err(Refusal::BadSettings);
    }
    if after != *before {
        if !role.is_admin() {
            return Err(Refusal::NotAdmin);
        }
        if after.listed() != before.listed() && role != Role::Owner {
            return Err(Refusal::NotOwner);
        }
        if !after.listed().iter().any(|(_, r)| *r == Role::Owner) {
            return Err(Refusal::BadSettings);
        }
    }
    Ok(())
}
