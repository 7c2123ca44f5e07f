//! The relay's group mailbox API (`/v1/groups`): create, post a message in
//! an epoch, commit against an epoch, read the log, delete.

use ferry_proto::api::{CommitTaken, CreateGroup, GroupFetched, PostCommit, RotateKeys, Sent};
use ferry_proto::{MailboxId, MailboxKey, PublicKey, Seq};
use reqwest::Method;

use super::RelayClient;
use crate::transport::ClientError;

/// A commit to send: the same value sent again after a lost answer gets
/// the first answer (the relay compares the payload), so a retry reuses
/// it byte for byte and never makes a second commit.
#[derive(Clone)]
pub struct GroupCommit {
    /// The epoch it was made against.
    pub expected: u64,
    /// The padded commit.
    pub payload: Vec<u8>,
    /// New read and write keys that take effect with it.
    pub rotate: Option<(PublicKey, PublicKey)>,
    /// Admin keys added with it.
    pub add_admins: Vec<PublicKey>,
    /// Admin keys removed with it.
    pub remove_admins: Vec<PublicKey>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl RelayClient {
    /// Creates a group mailbox (idempotent for the same keys), signed by
    /// all three keys.
    pub async fn create_group(
        &self,
        id: MailboxId,
        admin: &MailboxKey,
        read: &MailboxKey,
        write: &MailboxKey,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&CreateGroup {
            id,
            admin_key: admin.public(),
            read_key: read.public(),
            write_key: write.public(),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.call(
            Method::POST,
            "/v1/groups",
            &[admin, read, write],
            body,
            "application/json",
            true,
        )
        .await
        .map(|_| ())
    }

    /// Posts a padded message in `epoch`; a commit that moved the group on
    /// answers [`ClientError::GroupMovedOn`].
    pub async fn post_group(
        &self,
        id: MailboxId,
        write: &MailboxKey,
        epoch: u64,
        payload: Vec<u8>,
    ) -> Result<Seq, ClientError> {
        let path = format!("/v1/groups/{}/messages?epoch={epoch}", id.to_b64());
        let out = self
            .call(
                Method::POST,
                &path,
                &[write],
                payload,
                "application/octet-stream",
                false,
            )
            .await?;
        let sent: Sent =
            serde_json::from_slice(&out).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(sent.seq)
    }

    /// Commits against `commit.expected`, signed by `admin`; another
    /// epoch answers [`ClientError::GroupMovedOn`].
    pub async fn commit_group(
        &self,
        id: MailboxId,
        admin: &MailboxKey,
        commit: &GroupCommit,
    ) -> Result<CommitTaken, ClientError> {
        let path = format!("/v1/groups/{}/commits", id.to_b64());
        let body = PostCommit {
            admin_key: admin.public(),
            expected: commit.expected,
            payload: commit.payload.clone(),
            rotate: commit.rotate.map(|(read_key, write_key)| RotateKeys {
                read_key,
                write_key,
            }),
            add_admins: commit.add_admins.clone(),
            remove_admins: commit.remove_admins.clone(),
        };
        self.call_json(Method::POST, &path, &[admin], &body).await
    }

    /// Reads the group's log after `after` with a read key.
    pub async fn fetch_group(
        &self,
        id: MailboxId,
        read: &MailboxKey,
        after: Seq,
        limit: Option<usize>,
    ) -> Result<GroupFetched, ClientError> {
        let mut path = format!(
            "/v1/groups/{}/entries?key={}&after={}",
            id.to_b64(),
            ferry_proto::b64::encode(&read.public().to_bytes()),
            after.0
        );
        if let Some(l) = limit {
            path.push_str(&format!("&limit={l}"));
        }
        let out = self
            .call(
                Method::GET,
                &path,
                &[read],
                Vec::new(),
                "application/json",
                false,
            )
            .await?;
        serde_json::from_slice(&out).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Deletes the group mailbox, signed by an admin key.
    pub async fn delete_group(&self, id: MailboxId, admin: &MailboxKey) -> Result<(), ClientError> {
        let path = format!(
            "/v1/groups/{}?admin_key={}",
            id.to_b64(),
            ferry_proto::b64::encode(&admin.public().to_bytes())
        );
        self.call(
            Method::DELETE,
            &path,
            &[admin],
            Vec::new(),
            "application/json",
            false,
        )
        .await
        .map(|_| ())
    }
}
