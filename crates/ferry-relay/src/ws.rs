//! Live push over WebSocket.
//!
//! A connection is authorized per mailbox by signed operations: `subscribe`
//! (recipient keys) to receive and ack, `authorize_send` (sender keys) to
//! send. After that, sends and acks on the socket need no further signature:
//! the rights belong to this connection only and end with it.
//!
//! On `subscribe` the relay registers the connection for live push first and
//! then sends what is already waiting, so nothing falls between the two. It
//! tracks the last sequence number delivered per mailbox: a pushed message
//! already delivered is skipped, and a gap (a lagging queue, concurrent
//! sends) is filled from the store, so every message arrives once and in
//! order on a connection.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use ferry_proto::api::{
    AuthorizeSend, ClientFrame, Message, ServerFrame, Subscribe, ws_signing_path,
};
use ferry_proto::auth::{Nonce, RequestAuth};
use ferry_proto::keys::SIGNATURE_LEN;
use ferry_proto::{ErrorCode, MailboxId, Seq, b64, padding};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::{Semaphore, mpsc};

use crate::error::ApiError;
use crate::push::{Pushed, Subscriber};
use crate::server::Shared;
use crate::service::{authenticate_many, check_mailbox_list, limits, store_and_push};

/// Pushed messages buffered per connection before it is marked as lagging.
const PUSH_QUEUE: usize = 1024;
/// Sends and acks in flight per connection.
const IN_FLIGHT: usize = 64;
/// Largest frame a client may send (a subscribe with 1000 signed mailboxes).
const MAX_FRAME: usize = 512 * 1024;

/// Counts an open WebSocket connection for as long as it lives (or until
/// an upgrade that never completes is dropped).
struct Open(Shared);

impl Drop for Open {
    fn drop(&mut self) {
        self.0
            .metrics
            .ws_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) async fn upgrade(
    State(s): State<Shared>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    _body: Result<Bytes, BytesRejection>,
) -> Response {
    match ws {
        Ok(ws) => {
            let open = s.metrics.ws_connections.fetch_add(1, Ordering::Relaxed);
            let guard = Open(s.clone());
            if usize::try_from(open).unwrap_or(0) >= s.config.max_ws_connections {
                s.metrics.limited.count(crate::limit::Limit::WsConnections);
                return ApiError::new(ErrorCode::TooManyConnections).into_response();
            }
            ws.max_message_size(MAX_FRAME)
                .max_frame_size(MAX_FRAME)
                .on_upgrade(move |socket| run(socket, s, peer, guard))
                .into_response()
        }
        Err(_) => ApiError::new(ErrorCode::BadRequest)
            .detail("not a websocket upgrade")
            .into_response(),
    }
}

struct Conn {
    s: Shared,
    sub: Arc<Subscriber>,
    /// Subscribed mailboxes and the last sequence number delivered.
    delivered: HashMap<MailboxId, Seq>,
    may_send: HashSet<MailboxId>,
    /// Mailboxes with more waiting than one bounded read returned.
    backlog: Vec<MailboxId>,
    out: mpsc::Sender<ServerFrame>,
    in_flight: Arc<Semaphore>,
}

async fn run(socket: WebSocket, s: Shared, peer: std::net::SocketAddr, _open: Open) {
    let (push_tx, mut push_rx) = mpsc::channel::<Pushed>(PUSH_QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<ServerFrame>(IN_FLIGHT * 2);
    let sub = s.hub.new_subscriber(push_tx);
    let mut conn = Conn {
        s: s.clone(),
        sub: Arc::clone(&sub),
        delivered: HashMap::new(),
        may_send: HashSet::new(),
        backlog: Vec::new(),
        out: out_tx,
        in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
    };
    let (mut sink, mut stream) = socket.split();
    let mut frames: Vec<ServerFrame> = Vec::new();
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(WsMessage::Text(text))) => {
                    s.metrics.ws_frames.fetch_add(1, Ordering::Relaxed);
                    if s.per_connection.take(&peer, std::time::Instant::now()) {
                        conn.handle(text.as_str(), &mut frames).await;
                    } else {
                        s.metrics.limited.count(crate::limit::Limit::Connection);
                        frames.push(error_frame(None, ErrorCode::RateLimited, None));
                    }
                }
                Some(Ok(WsMessage::Binary(_))) => {
                    if s.per_connection.take(&peer, std::time::Instant::now()) {
                        frames.push(error_frame(None, ErrorCode::BadRequest, None));
                    } else {
                        s.metrics.limited.count(crate::limit::Limit::Connection);
                        frames.push(error_frame(None, ErrorCode::RateLimited, None));
                    }
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
            },
            Some(p) = push_rx.recv() => conn.deliver(p, &mut frames).await,
            Some(f) = out_rx.recv() => frames.push(f),
            () = sub.wake.notified() => {
                if sub.lagged.swap(false, Ordering::AcqRel) {
                    conn.catch_up(&mut frames).await;
                }
            }
        }
        if !frames.is_empty() && write_all(&mut sink, &mut frames).await.is_err() {
            break;
        }
        let mut broken = false;
        while !conn.backlog.is_empty() {
            conn.continue_backlog(&mut frames).await;
            if write_all(&mut sink, &mut frames).await.is_err() {
                broken = true;
                break;
            }
        }
        if broken {
            break;
        }
    }
    s.hub.unregister(sub.id, conn.delivered.keys().copied());
    s.per_connection.forget(&peer);
}

async fn write_all(
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    frames: &mut Vec<ServerFrame>,
) -> Result<(), axum::Error> {
    for f in frames.drain(..) {
        let text = serde_json::to_string(&f)
            .unwrap_or_else(|_| String::from(r#"{"op":"error","code":"internal"}"#));
        sink.feed(WsMessage::Text(text.into())).await?;
    }
    sink.flush().await
}

fn error_frame(req: Option<u64>, code: ErrorCode, server_time: Option<u64>) -> ServerFrame {
    ServerFrame::Error {
        req,
        code,
        server_time,
    }
}

fn api_error_frame(req: u64, e: ApiError) -> ServerFrame {
    if crate::error::status_of(e.code).is_server_error() {
        tracing::warn!(
            code = e.code.as_str(),
            detail = e.detail.as_deref(),
            "ws request failed"
        );
    } else {
        tracing::debug!(
            code = e.code.as_str(),
            detail = e.detail.as_deref(),
            "ws request refused"
        );
    }
    error_frame(Some(req), e.code, e.server_time)
}

fn parse_signed(ts: u64, nonce: &str, sigs: &[String]) -> Result<RequestAuth, ApiError> {
    let nonce = b64::decode_array(nonce).map_err(|_| ApiError::new(ErrorCode::MissingAuth))?;
    let signatures = sigs
        .iter()
        .map(|s| b64::decode_array::<SIGNATURE_LEN>(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::new(ErrorCode::MissingAuth))?;
    Ok(RequestAuth {
        timestamp: ts,
        nonce: Nonce(nonce),
        signatures,
    })
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    serde_json::from_str(body).map_err(|_| ApiError::new(ErrorCode::MalformedJson))
}

impl Conn {
    async fn handle(&mut self, text: &str, frames: &mut Vec<ServerFrame>) {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(_) => {
                frames.push(error_frame(None, ErrorCode::MalformedJson, None));
                return;
            }
        };
        match frame {
            ClientFrame::Subscribe {
                req,
                ts,
                nonce,
                sigs,
                body,
            } => match self.subscribe(ts, &nonce, &sigs, body).await {
                Ok(entries) => {
                    frames.push(ServerFrame::Ok { req });
                    self.send_backlog(&entries, frames).await;
                }
                Err(e) => frames.push(api_error_frame(req, e)),
            },
            ClientFrame::AuthorizeSend {
                req,
                ts,
                nonce,
                sigs,
                body,
            } => match self.authorize_send(ts, &nonce, &sigs, body).await {
                Ok(()) => frames.push(ServerFrame::Ok { req }),
                Err(e) => frames.push(api_error_frame(req, e)),
            },
            ClientFrame::Send {
                req,
                mailbox,
                payload,
            } => {
                if !self.may_send.contains(&mailbox) {
                    frames.push(error_frame(Some(req), ErrorCode::NotAuthorized, None));
                } else if !padding::is_bucket_size(payload.len()) {
                    frames.push(error_frame(
                        Some(req),
                        ErrorCode::PayloadSizeNotBucket,
                        None,
                    ));
                } else {
                    let Ok(permit) = Arc::clone(&self.in_flight).acquire_owned().await else {
                        return;
                    };
                    let (s, out) = (self.s.clone(), self.out.clone());
                    tokio::spawn(async move {
                        let frame = match store_and_push(&s, mailbox, Bytes::from(payload)).await {
                            Ok(seq) => ServerFrame::Sent { req, seq },
                            Err(e) => api_error_frame(req, e),
                        };
                        let _ = out.send(frame).await;
                        drop(permit);
                    });
                }
            }
            ClientFrame::Ack {
                req,
                mailbox,
                up_to,
            } => {
                if !self.delivered.contains_key(&mailbox) {
                    frames.push(error_frame(Some(req), ErrorCode::NotAuthorized, None));
                    return;
                }
                let Ok(permit) = Arc::clone(&self.in_flight).acquire_owned().await else {
                    return;
                };
                let (s, out) = (self.s.clone(), self.out.clone());
                tokio::spawn(async move {
                    let frame = match s.store.ack(vec![(mailbox, up_to)]).await {
                        Ok(_) => ServerFrame::Ok { req },
                        Err(e) => api_error_frame(req, e.into()),
                    };
                    let _ = out.send(frame).await;
                    drop(permit);
                });
            }
        }
    }

    async fn subscribe(
        &mut self,
        ts: u64,
        nonce: &str,
        sigs: &[String],
        body: String,
    ) -> Result<Vec<(MailboxId, Seq)>, ApiError> {
        let auth = parse_signed(ts, nonce, sigs)?;
        let sub: Subscribe = parse_body(&body)?;
        let ids: Vec<MailboxId> = sub.mailboxes.iter().map(|e| e.id).collect();
        check_mailbox_list(&self.s, &ids)?;
        if self.delivered.len() + ids.len() > self.s.config.max_subscriptions_per_connection {
            self.s
                .metrics
                .limited
                .count(crate::limit::Limit::Subscriptions);
            return Err(ApiError::new(ErrorCode::TooManyMailboxes));
        }
        let records = authenticate_many(
            &self.s,
            auth,
            &ids,
            |r| Some(r.recipient_key),
            "WS",
            ws_signing_path("subscribe"),
            Bytes::from(body),
        )
        .await?;
        if records.iter().any(Option::is_none) {
            return Err(ApiError::new(ErrorCode::UnknownMailbox));
        }
        self.s.hub.register(&self.sub, &ids);
        let entries: Vec<(MailboxId, Seq)> =
            sub.mailboxes.iter().map(|e| (e.id, e.after)).collect();
        for (id, after) in &entries {
            let d = self.delivered.entry(*id).or_default();
            *d = (*d).max(*after);
        }
        Ok(entries)
    }

    async fn authorize_send(
        &mut self,
        ts: u64,
        nonce: &str,
        sigs: &[String],
        body: String,
    ) -> Result<(), ApiError> {
        let auth = parse_signed(ts, nonce, sigs)?;
        let req: AuthorizeSend = parse_body(&body)?;
        check_mailbox_list(&self.s, &req.mailboxes)?;
        if self.may_send.len() + req.mailboxes.len()
            > self.s.config.max_subscriptions_per_connection
        {
            self.s
                .metrics
                .limited
                .count(crate::limit::Limit::Subscriptions);
            return Err(ApiError::new(ErrorCode::TooManyMailboxes));
        }
        let records = authenticate_many(
            &self.s,
            auth,
            &req.mailboxes,
            |r| r.sender_key,
            "WS",
            ws_signing_path("authorize_send"),
            Bytes::from(body),
        )
        .await?;
        if records.iter().any(Option::is_none) {
            return Err(ApiError::new(ErrorCode::UnknownMailbox));
        }
        self.may_send.extend(req.mailboxes);
        Ok(())
    }

    /// Sends everything waiting after the delivered cursor of each mailbox.
    async fn send_backlog(
        &mut self,
        mailboxes: &[(MailboxId, Seq)],
        frames: &mut Vec<ServerFrame>,
    ) {
        let pending: Vec<MailboxId> = mailboxes.iter().map(|(id, _)| *id).collect();
        // One bounded read (fetch limits) per call: what is left waits in
        // `self.backlog` until these frames are written, so memory stays
        // bounded whatever is waiting.
        {
            let reads: Vec<(MailboxId, Seq)> = pending
                .iter()
                .map(|id| (*id, self.delivered.get(id).copied().unwrap_or_default()))
                .collect();
            let batches = match self
                .s
                .store
                .fetch(reads, limits(&self.s, None), self.s.clock.now())
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    let e: ApiError = e.into();
                    tracing::warn!(detail = e.detail.as_deref(), "ws backlog read failed");
                    frames.push(error_frame(None, e.code, None));
                    return;
                }
            };
            let mut still = Vec::new();
            for (id, batch) in pending.iter().zip(batches) {
                for m in batch.messages {
                    self.delivered.insert(*id, m.seq);
                    frames.push(ServerFrame::Message {
                        mailbox: *id,
                        message: Message {
                            seq: m.seq,
                            payload: m.payload.to_vec(),
                        },
                    });
                }
                if batch.more {
                    still.push(*id);
                }
            }
            for id in still {
                if !self.backlog.contains(&id) {
                    self.backlog.push(id);
                }
            }
        }
    }

    /// Continues a backlog left by [`Conn::send_backlog`].
    async fn continue_backlog(&mut self, frames: &mut Vec<ServerFrame>) {
        let pending: Vec<(MailboxId, Seq)> = std::mem::take(&mut self.backlog)
            .into_iter()
            .map(|id| (id, self.delivered.get(&id).copied().unwrap_or_default()))
            .collect();
        self.send_backlog(&pending, frames).await;
    }

    async fn deliver(&mut self, p: Pushed, frames: &mut Vec<ServerFrame>) {
        let Some(last) = self.delivered.get(&p.mailbox).copied() else {
            return;
        };
        if p.seq <= last {
            return;
        }
        if p.seq.0 == last.0 + 1 {
            self.delivered.insert(p.mailbox, p.seq);
            frames.push(ServerFrame::Message {
                mailbox: p.mailbox,
                message: Message {
                    seq: p.seq,
                    payload: p.payload.to_vec(),
                },
            });
        } else {
            self.send_backlog(&[(p.mailbox, last)], frames).await;
        }
    }

    async fn catch_up(&mut self, frames: &mut Vec<ServerFrame>) {
        let all: Vec<(MailboxId, Seq)> = self.delivered.iter().map(|(k, v)| (*k, *v)).collect();
        self.send_backlog(&all, frames).await;
    }
}
