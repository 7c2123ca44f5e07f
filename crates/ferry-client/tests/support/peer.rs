//! A contact without a vault, for tests and benchmarks: an engine whose
//! relay calls are made here over a real relay client.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use ferry_client::{RelayClient, Session};
use ferry_core::{Action, Engine, InviteLink};
use ferry_proto::Seq;
use rand_core::OsRng;

/// A contact without a vault: an engine whose relay calls are made here.
pub struct Peer {
    pub engine: Engine,
    pub client: RelayClient,
}

impl Peer {
    /// Performs the engine's queued relay calls.
    pub async fn flush(&mut self) {
        while let Some((id, action)) = self.engine.outbox_first() {
            match action {
                Action::CreateMailbox {
                    mailbox,
                    recipient,
                    sender_public,
                    ..
                } => {
                    let key = recipient.mailbox_key();
                    self.client.create_mailbox(mailbox, &key).await.unwrap();
                    self.client
                        .set_sender(mailbox, &key, sender_public)
                        .await
                        .unwrap();
                }
                Action::Send {
                    mailbox,
                    sender,
                    payload,
                    ..
                } => {
                    self.client
                        .send(mailbox, &sender.mailbox_key(), payload)
                        .await
                        .unwrap();
                }
                // These peers hold no groups.
                Action::DeleteMailbox { .. }
                | Action::CreateGroup { .. }
                | Action::GroupPost { .. }
                | Action::GroupCommit { .. } => {}
            }
            self.engine.outbox_remove(id);
        }
    }

    /// Queues a text to the session ("owner"), sent at the next flush.
    pub fn queue_text(&mut self, text: &str) {
        self.engine
            .send_text(
                ferry_client::session::now(),
                &mut OsRng,
                "owner",
                text,
                false,
            )
            .unwrap();
    }

    /// Sends a text to the session now.
    pub async fn send_text(&mut self, text: &str) {
        self.queue_text(text);
        self.flush().await;
    }

    /// Fetches and processes everything waiting in its mailboxes.
    pub async fn receive(&mut self) {
        for ib in self.engine.inbound() {
            let key = ib.recipient.mailbox_key();
            let got = self
                .client
                .fetch(ib.mailbox, &key, Seq(ib.cursor), Some(1000))
                .await
                .unwrap();
            for m in got.messages {
                self.engine
                    .receive(
                        ferry_client::session::now(),
                        &mut OsRng,
                        ib.mailbox,
                        m.seq.0,
                        &m.payload,
                    )
                    .unwrap();
            }
        }
    }
}

/// Gives `s` `count` established contacts (peers with no vault).
pub async fn add_peers(s: &mut Session, url: &str, count: usize, first: usize) -> Vec<Peer> {
    let mut peers = Vec::with_capacity(count);
    for i in first..first + count {
        let link = s.invite(&format!("peer {i}")).await.unwrap();
        let mut peer = Peer {
            engine: Engine::new(url),
            client: RelayClient::new(url).unwrap(),
        };
        let link = InviteLink::parse(&link.to_link()).unwrap();
        peer.engine
            .accept_invite(ferry_client::session::now(), &mut OsRng, &link, "owner")
            .unwrap();
        peer.flush().await;
        peers.push(peer);
    }
    s.sync().await.unwrap();
    for p in &mut peers {
        p.receive().await;
        assert_eq!(
            p.engine.contacts()[0].state,
            ferry_core::ContactState::Established
        );
    }
    peers
}
