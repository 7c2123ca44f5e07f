//! An admin's commits: made, checked as every member will check them,
//! kept pending with their bytes until the relay takes them, then applied
//! or dropped.

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::OpenMlsProvider;
use zeroize::Zeroizing;

use super::{
    GroupChat, GroupError, Outgoing, RELAY_KEYS_LABEL, RelayKeys, Role, Settings, mls, policy,
};

impl GroupChat {
    pub(super) fn require_admin(&self) -> Result<(), GroupError> {
        if self.group.pending_commit().is_some() {
            return Err(GroupError::CommitPending);
        }
        if self.settings()?.role_of(&self.own_key()).is_admin() {
            Ok(())
        } else {
            Err(GroupError::NotAdmin)
        }
    }

    pub(super) fn index_of(&self, key: &[u8]) -> Result<LeafNodeIndex, GroupError> {
        self.group
            .members()
            .find(|m| m.signature_key == key)
            .map(|m| m.index)
            .ok_or(GroupError::UnknownMember)
    }

    /// Adds members from their key packages (admins only); pending until
    /// [`GroupChat::confirm`].
    pub fn add(
        &mut self,
        provider: &impl OpenMlsProvider,
        signer: &SignatureKeyPair,
        key_packages: &[Vec<u8>],
    ) -> Result<Outgoing, GroupError> {
        self.require_admin()?;
        let mut kps = Vec::with_capacity(key_packages.len());
        for kp in key_packages {
            let kp = KeyPackageIn::tls_deserialize_exact(kp).map_err(|_| GroupError::Malformed)?;
            kps.push(
                kp.validate(provider.crypto(), ProtocolVersion::Mls10)
                    .map_err(mls)?,
            );
        }
        let (commit, welcome, _) = self
            .group
            .add_members(provider, signer, &kps)
            .map_err(mls)?;
        let welcome = welcome.tls_serialize_detached().map_err(mls)?;
        self.outgoing(provider, &commit, Some(welcome))
    }

    /// Checks our own pending commit as every member will (a commit they
    /// would skip is dropped here, never sent, together with the stored
    /// proposals it took in, so one bad proposal cannot block every later
    /// commit), keeps all of it for a retry and works out the relay keys it
    /// moves to. Any failure drops the commit: nothing stays half-made.
    pub(super) fn outgoing(
        &mut self,
        provider: &impl OpenMlsProvider,
        commit: &MlsMessageOut,
        welcome: Option<Vec<u8>>,
    ) -> Result<Outgoing, GroupError> {
        match self.check_pending(provider, commit, welcome) {
            Ok(out) => {
                self.pending = Some(out.clone());
                Ok(out)
            }
            Err(e) => {
                self.cancel(provider)?;
                if matches!(e, GroupError::Refused(_)) {
                    self.group
                        .clear_pending_proposals(provider.storage())
                        .map_err(mls)?;
                }
                Err(e)
            }
        }
    }

    fn check_pending(
        &self,
        provider: &impl OpenMlsProvider,
        commit: &MlsMessageOut,
        welcome: Option<Vec<u8>>,
    ) -> Result<Outgoing, GroupError> {
        let before = self.settings()?;
        let own = Sender::Member(self.group.own_leaf_index());
        let staged = self
            .group
            .pending_commit()
            .ok_or_else(|| GroupError::Mls("no pending commit".into()))?;
        policy::authorize(&self.group, &before, &own, staged).map_err(GroupError::Refused)?;
        let rotate = if staged.remove_proposals().next().is_some() {
            let secret = Zeroizing::new(
                staged
                    .export_secret(provider.crypto(), RELAY_KEYS_LABEL, &[], 32)
                    .map_err(mls)?,
            );
            Some(RelayKeys::from_exported(&secret)?)
        } else {
            None
        };
        Ok(Outgoing {
            commit: commit.tls_serialize_detached().map_err(mls)?,
            welcome,
            rotate,
        })
    }

    /// Our commit waiting for the relay's answer, all of it (sent again as
    /// it is after a lost answer or a restart: the relay recognizes a retry
    /// only if the commit and its key changes are the same).
    pub fn pending_commit(&self) -> Option<&Outgoing> {
        self.pending.as_ref()
    }

    /// Removes a member (admins; an owner only by an owner) and moves the
    /// relay keys on; pending until [`GroupChat::confirm`].
    pub fn remove(
        &mut self,
        provider: &impl OpenMlsProvider,
        signer: &SignatureKeyPair,
        member: &[u8],
    ) -> Result<Outgoing, GroupError> {
        self.require_admin()?;
        let s = self.settings()?;
        if s.role_of(member) == Role::Owner && s.role_of(&self.own_key()) != Role::Owner {
            return Err(GroupError::NotAdmin);
        }
        let index = self.index_of(member)?;
        let (commit, _, _) = self
            .group
            .remove_members(provider, signer, &[index])
            .map_err(mls)?;
        self.outgoing(provider, &commit, None)
    }

    /// Changes roles or the timer (admins; roles only by an owner);
    /// pending until [`GroupChat::confirm`].
    pub fn change_settings(
        &mut self,
        provider: &impl OpenMlsProvider,
        signer: &SignatureKeyPair,
        settings: &Settings,
    ) -> Result<Outgoing, GroupError> {
        self.require_admin()?;
        let now = self.settings()?;
        if now.listed() != settings.listed() && now.role_of(&self.own_key()) != Role::Owner {
            return Err(GroupError::NotAdmin);
        }
        let (commit, _, _) = self
            .group
            .update_group_context_extensions(provider, settings.extensions()?, signer)
            .map_err(mls)?;
        self.outgoing(provider, &commit, None)
    }

    /// The relay took our pending commit: apply it (and the relay keys it
    /// moved to). Also right when the MLS state already holds it merged
    /// (saved before the relay's answer, merged before a crash).
    pub fn confirm(&mut self, provider: &impl OpenMlsProvider) -> Result<(), GroupError> {
        if self.group.pending_commit().is_some() {
            self.group.merge_pending_commit(provider).map_err(mls)?;
        }
        if let Some(out) = self.pending.take()
            && let Some(keys) = out.rotate
        {
            self.relay_keys = keys;
        }
        let members: Vec<Vec<u8>> = self.group.members().map(|m| m.signature_key).collect();
        self.quarantined.retain(|k| members.contains(k));
        Ok(())
    }

    /// The relay refused our pending commit (another came first): drop it.
    pub fn cancel(&mut self, provider: &impl OpenMlsProvider) -> Result<(), GroupError> {
        self.pending = None;
        self.group
            .clear_pending_commit(provider.storage())
            .map_err(mls)
    }
}
