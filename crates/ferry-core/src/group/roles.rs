//! A group's roles and settings, kept in the MLS group context (a private
//! extension), so every member reads the same ones at every epoch and a
//! commit that changes them is checked like any other.
//!
//! Encoding (version 1): `1 ‖ timer u32 ‖ count u16 ‖ (len u8 ‖ key ‖
//! role u8)*`, keys sorted and unique. Members not listed are plain
//! members; only owners and admins are listed.

use openmls::prelude::{
    Extension, ExtensionType, Extensions, GroupContext, RequiredCapabilitiesExtension,
    UnknownExtension,
};

/// The private extension type (RFC 9420's private-use range).
pub const SETTINGS_EXTENSION: u16 = 0xF3A1;

/// Most owners and admins a group lists.
pub const MAX_LISTED: usize = 64;

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Sends, refreshes its own keys, asks to add someone or to leave.
    Member,
    /// Also adds, removes and changes settings.
    Admin,
    /// Also makes and unmakes admins and owners.
    Owner,
}

impl Role {
    fn to_byte(self) -> u8 {
        match self {
            Self::Member => 0,
            Self::Admin => 1,
            Self::Owner => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Member),
            1 => Some(Self::Admin),
            2 => Some(Self::Owner),
            _ => None,
        }
    }

    /// Whether it may add, remove and change settings.
    pub fn is_admin(self) -> bool {
        self >= Self::Admin
    }
}

/// Roles and settings as they stand at one epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Disappearing-message timer in seconds (0: off), set by an admin.
    pub timer: u32,
    /// Owners and admins by group signature key, sorted.
    listed: Vec<(Vec<u8>, Role)>,
}

/// Why stored settings could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the group's settings are malformed")]
pub struct MalformedSettings;

impl Settings {
    /// A new group's: its creator owns it.
    pub fn founded_by(owner: &[u8], timer: u32) -> Self {
        Self {
            timer,
            listed: vec![(owner.to_vec(), Role::Owner)],
        }
    }

    /// The role of the member with this signature key.
    pub fn role_of(&self, key: &[u8]) -> Role {
        self.listed
            .iter()
            .find(|(k, _)| k == key)
            .map_or(Role::Member, |(_, r)| *r)
    }

    /// The same settings with `key` given `role`.
    pub fn with_role(&self, key: &[u8], role: Role) -> Self {
        let mut listed: Vec<(Vec<u8>, Role)> = self
            .listed
            .iter()
            .filter(|(k, _)| k != key)
            .cloned()
            .collect();
        if role != Role::Member {
            listed.push((key.to_vec(), role));
            listed.sort();
        }
        Self {
            timer: self.timer,
            listed,
        }
    }

    /// Owners and admins.
    pub fn listed(&self) -> &[(Vec<u8>, Role)] {
        &self.listed
    }

    /// The extension's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        out.extend_from_slice(&self.timer.to_be_bytes());
        let n = u16::try_from(self.listed.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        for (k, r) in self.listed.iter().take(usize::from(n)) {
            out.push(u8::try_from(k.len()).unwrap_or(u8::MAX));
            out.extend_from_slice(&k[..k.len().min(255)]);
            out.push(r.to_byte());
        }
        out
    }

    /// Reads the extension's bytes; anything malformed is refused whole.
    pub fn decode(b: &[u8]) -> Result<Self, MalformedSettings> {
        let (&version, rest) = b.split_first().ok_or(MalformedSettings)?;
        if version != 1 || rest.len() < 6 {
            return Err(MalformedSettings);
        }
        let (timer, rest) = rest.split_at(4);
        let timer = u32::from_be_bytes(timer.try_into().map_err(|_| MalformedSettings)?);
        let (n, mut rest) = rest.split_at(2);
        let n = u16::from_be_bytes(n.try_into().map_err(|_| MalformedSettings)?);
        if usize::from(n) > MAX_LISTED {
            return Err(MalformedSettings);
        }
        let mut listed: Vec<(Vec<u8>, Role)> = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let (&len, r) = rest.split_first().ok_or(MalformedSettings)?;
            let len = usize::from(len);
            if r.len() < len + 1 || len == 0 {
                return Err(MalformedSettings);
            }
            let key = r[..len].to_vec();
            let role = Role::from_byte(r[len]).ok_or(MalformedSettings)?;
            if role == Role::Member || listed.last().is_some_and(|(k, _)| *k >= key) {
                return Err(MalformedSettings);
            }
            listed.push((key, role));
            rest = &r[len + 1..];
        }
        if !rest.is_empty() {
            return Err(MalformedSettings);
        }
        Ok(Self { timer, listed })
    }

    /// The group context extensions that carry these settings.
    pub fn extensions(&self) -> Result<Extensions<GroupContext>, MalformedSettings> {
        // Every member must support the extension (its key package says
        // so), or MLS refuses to change it.
        Extensions::from_vec(vec![
            Extension::RequiredCapabilities(RequiredCapabilitiesExtension::new(
                &[extension_type()],
                &[],
                &[],
            )),
            Extension::Unknown(SETTINGS_EXTENSION, UnknownExtension(self.encode())),
        ])
        .map_err(|_| MalformedSettings)
    }

    /// The settings in a group context's extensions.
    pub fn from_extensions(e: &Extensions<GroupContext>) -> Result<Self, MalformedSettings> {
        match e.unknown(SETTINGS_EXTENSION) {
            Some(UnknownExtension(bytes)) => Self::decode(bytes),
            None => Err(MalformedSettings),
        }
    }
}

/// The extension type, for capabilities.
pub fn extension_type() -> ExtensionType {
    ExtensionType::Unknown(SETTINGS_EXTENSION)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn settings_round_trip_and_refuse_what_is_malformed() {
        let s = Settings::founded_by(b"owner", 3600)
            .with_role(b"admin", Role::Admin)
            .with_role(b"x", Role::Admin)
            .with_role(b"x", Role::Member);
        assert_eq!(s.role_of(b"owner"), Role::Owner);
        assert_eq!(s.role_of(b"admin"), Role::Admin);
        assert_eq!(s.role_of(b"x"), Role::Member);
        let bytes = s.encode();
        assert_eq!(Settings::decode(&bytes).unwrap(), s);
        for cut in 0..bytes.len() {
            assert!(Settings::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Settings::decode(&extra).is_err());
        let mut member_listed = bytes.clone();
        let last = member_listed.len() - 1;
        member_listed[last] = 0;
        assert!(Settings::decode(&member_listed).is_err());
        let mut unknown_role = bytes;
        unknown_role[last] = 9;
        assert!(Settings::decode(&unknown_role).is_err());
    }
}
