//! The live WebSocket: subscribe to mailboxes, receive pushes, send and ack.

use std::sync::Arc;

use ferry_proto::api::{AuthorizeSend, ClientFrame, ServerFrame, Subscribe, SyncEntry};
use ferry_proto::{MailboxId, MailboxKey, Seq};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::net::IoStream;
use crate::transport::{ClientError, Transport};

type Ws = WebSocketStream<Box<dyn IoStream>>;

/// An open live connection to a relay.
pub struct LiveConnection {
    ws: Ws,
    next_req: u64,
    /// Signs operations at the relay's time (the clock it learned).
    transport: Arc<Transport>,
}

impl std::fmt::Debug for LiveConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConnection").finish_non_exhaustive()
    }
}

fn ws_err(e: tokio_tungstenite::tungstenite::Error) -> ClientError {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        // The relay refused the upgrade with an error code (e.g. it holds
        // as many connections as it accepts).
        Error::Http(resp) => {
            let status = resp.status().as_u16();
            match resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<ferry_proto::api::ErrorBody>(b).ok())
            {
                Some(body) => ClientError::Relay {
                    status,
                    code: body.code,
                },
                None => ClientError::Protocol(format!("websocket upgrade refused: HTTP {status}")),
            }
        }
        Error::Io(io) => crate::net::classify_io(&io),
        other => ClientError::Transport(format!("websocket: {other}")),
    }
}

impl LiveConnection {
    pub(crate) async fn connect(transport: Arc<Transport>) -> Result<Self, ClientError> {
        let url = transport.ws_url()?;
        let parsed = url::Url::parse(&url)
            .map_err(|_| ClientError::Protocol("relay URL is not a valid URL".into()))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| ClientError::Protocol("relay URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = parsed.scheme() == "wss";
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| ClientError::Protocol("relay URL has no port".into()))?;
        let stream = crate::net::connect_stream(transport.network(), &host, port, tls).await?;
        let (ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .map_err(ws_err)?;
        Ok(Self {
            ws,
            next_req: 1,
            transport,
        })
    }

    fn req(&mut self) -> u64 {
        let r = self.next_req;
        self.next_req += 1;
        r
    }

    fn signed(&self, op: &str, keys: &[&MailboxKey], body: &str) -> (u64, String, Vec<String>) {
        // Signed with the current time: a subscribe may come hours after connect.
        self.transport.sign_ws(op, keys, body)
    }

    /// Sends a frame.
    pub async fn send_frame(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        let text =
            serde_json::to_string(frame).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.ws
            .send(WsMessage::Text(text.into()))
            .await
            .map_err(ws_err)
    }

    /// Sends a text frame as is (diagnostics and protocol tests).
    pub async fn send_raw_text(&mut self, text: &str) -> Result<(), ClientError> {
        self.ws
            .send(WsMessage::Text(text.to_owned().into()))
            .await
            .map_err(ws_err)
    }

    /// Subscribes to mailboxes (recipient keys); returns the request number
    /// whose `ok` or `error` will follow.
    pub async fn subscribe(
        &mut self,
        items: &[(MailboxId, &MailboxKey, Seq)],
    ) -> Result<u64, ClientError> {
        let body = serde_json::to_string(&Subscribe {
            mailboxes: items
                .iter()
                .map(|(id, _, after)| SyncEntry {
                    id: *id,
                    after: *after,
                    ack_up_to: None,
                })
                .collect(),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let keys: Vec<&MailboxKey> = items.iter().map(|(_, k, _)| *k).collect();
        let (ts, nonce, sigs) = self.signed("subscribe", &keys, &body);
        let req = self.req();
        self.send_frame(&ClientFrame::Subscribe {
            req,
            ts,
            nonce,
            sigs,
            body,
        })
        .await?;
        Ok(req)
    }

    /// Allows sending to mailboxes on this connection (sender keys).
    pub async fn authorize_send(
        &mut self,
        items: &[(MailboxId, &MailboxKey)],
    ) -> Result<u64, ClientError> {
        let body = serde_json::to_string(&AuthorizeSend {
            mailboxes: items.iter().map(|(id, _)| *id).collect(),
        })
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let keys: Vec<&MailboxKey> = items.iter().map(|(_, k)| *k).collect();
        let (ts, nonce, sigs) = self.signed("authorize_send", &keys, &body);
        let req = self.req();
        self.send_frame(&ClientFrame::AuthorizeSend {
            req,
            ts,
            nonce,
            sigs,
            body,
        })
        .await?;
        Ok(req)
    }

    /// Sends a padded payload to an authorized mailbox.
    pub async fn send(&mut self, mailbox: MailboxId, payload: Vec<u8>) -> Result<u64, ClientError> {
        let req = self.req();
        self.send_frame(&ClientFrame::Send {
            req,
            mailbox,
            payload,
        })
        .await?;
        Ok(req)
    }

    /// Acks a subscribed mailbox up to `up_to`.
    pub async fn ack(&mut self, mailbox: MailboxId, up_to: Seq) -> Result<u64, ClientError> {
        let req = self.req();
        self.send_frame(&ClientFrame::Ack {
            req,
            mailbox,
            up_to,
        })
        .await?;
        Ok(req)
    }

    /// Waits for the next frame from the relay; `None` when the connection closed.
    pub async fn next(&mut self) -> Option<Result<ServerFrame, ClientError>> {
        loop {
            match self.ws.next().await? {
                Ok(WsMessage::Text(t)) => {
                    return Some(
                        serde_json::from_str(t.as_str())
                            .map_err(|e| ClientError::Protocol(e.to_string())),
                    );
                }
                Ok(WsMessage::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => return Some(Err(ws_err(e))),
            }
        }
    }

    /// Waits for the answer to request `req`, handing other frames to `other`.
    pub async fn wait_for(
        &mut self,
        req: u64,
        mut other: impl FnMut(ServerFrame),
    ) -> Result<ServerFrame, ClientError> {
        while let Some(frame) = self.next().await {
            let frame = frame?;
            let matches = match &frame {
                ServerFrame::Ok { req: r } | ServerFrame::Sent { req: r, .. } => *r == req,
                ServerFrame::Error { req: r, .. } => *r == Some(req) || r.is_none(),
                ServerFrame::Message { .. } => false,
            };
            if matches {
                return Ok(frame);
            }
            other(frame);
        }
        Err(ClientError::Transport("websocket closed".into()))
    }

    /// Closes the connection.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.ws.close(None).await.map_err(ws_err)
    }
}
