//! The tus client of one relay's blob store.

use std::sync::Arc;

use ferry_core::KeyBytes;
use ferry_proto::MailboxKey;
use ferry_proto::auth::{HEADER_ACCESS_TOKEN, HEADER_BLOB_TOKEN, HEADER_MAILBOX};
use ferry_proto::{ErrorCode, MailboxId, b64};
use reqwest::{Method, StatusCode};
use zeroize::Zeroizing;

use crate::transport::{ClientError, Transport, refusal};

use super::{TUS, upload_offset};

/// A tus client for one relay's blob store (over [`crate::transport`]).
#[derive(Clone)]
pub struct BlobClient {
    transport: Arc<Transport>,
}

impl std::fmt::Debug for BlobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobClient(..)")
    }
}

fn blob_path(id: Option<MailboxId>) -> String {
    match id {
        Some(id) => format!("/v1/blobs/{}", id.to_b64()),
        None => "/v1/blobs".to_owned(),
    }
}

impl BlobClient {
    /// A client for the relay at `base`.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Ok(Self::over(Arc::new(Transport::new(base)?)))
    }

    /// A client for the relay at `base` that goes out as `network` says.
    pub fn with_network(base: &str, network: &crate::net::Network) -> Result<Self, ClientError> {
        Ok(Self::over(Arc::new(Transport::with_network(
            base, network,
        )?)))
    }

    /// A client over an existing transport (sharing its learned clock and,
    /// for the profile's own relay, its access token).
    pub fn over(transport: Arc<Transport>) -> Self {
        Self { transport }
    }

    /// The largest blob the relay accepts (`Tus-Max-Size`), if it says.
    pub async fn max_size(&self) -> Result<Option<u64>, ClientError> {
        let resp = self
            .transport
            .send(self.transport.request(Method::OPTIONS, &blob_path(None)))
            .await?;
        Ok(resp
            .headers()
            .get("tus-max-size")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Creates an upload of `length` bytes; returns its id and read token.
    /// `signer` (a mailbox on this relay and its sender key) lets a private
    /// relay accept it without the operator's token.
    pub async fn create(
        &self,
        length: u64,
        signer: Option<(MailboxId, &MailboxKey)>,
    ) -> Result<(MailboxId, KeyBytes), ClientError> {
        self.create_as(length, signer, HEADER_MAILBOX).await
    }

    /// Creates an upload for a group: `signer` is the group (on this relay)
    /// and its current write key.
    pub async fn create_for_group(
        &self,
        length: u64,
        signer: (MailboxId, &MailboxKey),
    ) -> Result<(MailboxId, KeyBytes), ClientError> {
        self.create_as(length, Some(signer), ferry_proto::auth::HEADER_GROUP)
            .await
    }

    async fn create_as(
        &self,
        length: u64,
        signer: Option<(MailboxId, &MailboxKey)>,
        header: &'static str,
    ) -> Result<(MailboxId, KeyBytes), ClientError> {
        let token = self.transport.access_token();
        let headers = |req: reqwest::RequestBuilder| {
            let req = req
                .header("tus-resumable", TUS)
                .header("upload-length", length);
            let req = match token {
                Some(t) => req.header(HEADER_ACCESS_TOKEN, t),
                None => req,
            };
            match signer {
                Some((mailbox, _)) => req.header(header, mailbox.to_b64()),
                None => req,
            }
        };
        let resp = match signer {
            Some((_, key)) => {
                self.transport
                    .send_signed(Method::POST, "/v1/blobs", &[key], Vec::new(), headers)
                    .await?
            }
            None => {
                self.transport
                    .send(headers(self.transport.request(Method::POST, "/v1/blobs")))
                    .await?
            }
        };
        if resp.status() != StatusCode::CREATED {
            return Err(refusal(resp).await);
        }
        let h = resp.headers();
        let id = h
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .and_then(|s| s.parse::<MailboxId>().ok())
            .ok_or_else(|| ClientError::Protocol("no blob location".into()))?;
        let token = h
            .get(HEADER_BLOB_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(|t| Zeroizing::new(t.to_owned()))
            .and_then(|t| b64::decode_array::<32>(&t).ok())
            .map(KeyBytes::from_bytes)
            .ok_or_else(|| ClientError::Protocol("no blob token".into()))?;
        Ok((id, token))
    }

    /// The relay's confirmed offset of an upload.
    pub async fn offset(&self, id: MailboxId) -> Result<u64, ClientError> {
        let req = self
            .transport
            .request(Method::HEAD, &blob_path(Some(id)))
            .header("tus-resumable", TUS);
        let resp = self.transport.send(req).await?;
        upload_offset(&resp)
    }

    /// Appends `len` bytes of `body` at `offset`; returns the new offset.
    pub(super) async fn patch(
        &self,
        id: MailboxId,
        offset: u64,
        len: u64,
        body: reqwest::Body,
    ) -> Result<u64, ClientError> {
        let req = self
            .transport
            .request(Method::PATCH, &blob_path(Some(id)))
            .header("tus-resumable", TUS)
            .header("upload-offset", offset)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/offset+octet-stream",
            )
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        let resp = self.transport.send(req).await?;
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(refusal(resp).await);
        }
        upload_offset(&resp)
    }

    /// Starts a download of the blob from `from`.
    pub(super) async fn get(
        &self,
        id: MailboxId,
        token: &KeyBytes,
        from: u64,
    ) -> Result<reqwest::Response, ClientError> {
        let token = Zeroizing::new(b64::encode(token.expose()));
        let mut req = self
            .transport
            .request(Method::GET, &blob_path(Some(id)))
            .header(HEADER_BLOB_TOKEN, token.as_str());
        if from > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let resp = self.transport.send(req).await?;
        let ok = if from > 0 {
            resp.status() == StatusCode::PARTIAL_CONTENT
        } else {
            resp.status() == StatusCode::OK
        };
        if !ok {
            return Err(refusal(resp).await);
        }
        Ok(resp)
    }

    /// The whole blob, at most `max` bytes (anything longer is refused as
    /// tampered with by the caller's checks).
    pub async fn fetch(
        &self,
        id: MailboxId,
        token: &KeyBytes,
        max: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let mut resp = self.get(id, token, 0).await?;
        let mut out = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(crate::transport::transport_err)?
        {
            if (out.len() + chunk.len()) as u64 > max {
                return Err(ClientError::Protocol("blob longer than announced".into()));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// Deletes the blob (termination). Unknown blobs are not an error.
    pub async fn delete(&self, id: MailboxId) -> Result<(), ClientError> {
        let req = self
            .transport
            .request(Method::DELETE, &blob_path(Some(id)))
            .header("tus-resumable", TUS);
        match self.transport.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
