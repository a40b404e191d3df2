//! The hand-written side of the Malamute client: its actions (what
//! zproto's `mlm_client.c` holds), and conveniences over the generated
//! API for string messages.

use std::time::Duration;

use zproto_runtime::client_host::ClientError;

use crate::mlm_client_engine::{replies, Actions, AsyncClient, Client, Event, Io, Reply};
use crate::mlm_proto::*;

/// A Malamute client on a reactor thread of its own (or share one with
/// [`Client::on`]).
pub type MlmClient = Client<ClientState>;

/// One client's own state (zproto's `client_t`).
#[derive(Debug, Clone)]
pub struct ClientState {
    /// PING interval once connected (upstream: one second).
    pub heartbeat: Duration,
    /// Silence after which the broker counts as gone (upstream: four
    /// heartbeats).
    pub expiry: Duration,
    /// Commands to replay to a broker that lost us: the producer stream,
    /// consumer subscriptions and service offers, in order.
    replays: Vec<(Event, MlmProto)>,
    /// The next replay to send.
    replay_at: usize,
}

impl Default for ClientState {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(1),
            expiry: Duration::from_secs(4),
            replays: Vec::new(),
            replay_at: 0,
        }
    }
}

impl ClientState {
    /// A client state with these timers.
    pub fn with_timers(heartbeat: Duration, expiry: Duration) -> Self {
        Self {
            heartbeat,
            expiry,
            ..Self::default()
        }
    }
}

impl Actions for ClientState {
    fn use_plain_credentials(&mut self, io: &mut Io) {
        let (user, password) = (io.args().username.clone(), io.args().password.clone());
        io.use_plain(&user, &password);
    }

    fn signal_success(&mut self, io: &mut Io) {
        io.reply(Reply::Success(replies::Success { status: 0 }));
    }

    fn signal_failure(&mut self, io: &mut Io) {
        let reason = match io.message() {
            Some(MlmProto::Error(e)) => format!("{} {}", e.status_code, e.status_reason),
            _ => "the broker did not answer".to_owned(),
        };
        io.reply(Reply::Failure(replies::Failure { status: -1, reason }));
    }

    fn connect_to_server(&mut self, io: &mut Io) {
        let endpoint = io.args().endpoint.clone();
        if let Err(e) = io.connect(&endpoint) {
            tracing::warn!("{e}");
            io.set_exception(Event::BadEndpoint);
        }
    }

    fn use_connect_timeout(&mut self, io: &mut Io) {
        io.set_expiry(Duration::from_millis(u64::from(io.args().timeout)));
    }

    fn prepare_connection_open(&mut self, io: &mut Io) {
        let address = io.args().address.clone();
        io.set_message(ConnectionOpen { address }.into());
    }

    fn client_is_connected(&mut self, io: &mut Io) {
        io.set_connected(true);
        io.set_heartbeat(self.heartbeat);
        io.set_expiry(self.expiry);
    }

    fn server_has_gone_offline(&mut self, io: &mut Io) {
        // Heartbeats go on: the broker's answer, when it is back, says
        // whether it is the same one.
        io.set_connected(false);
    }

    fn pass_message_to_app(&mut self, io: &mut Io) {
        if let Some(message) = io.take_message() {
            io.deliver(message);
        }
    }

    fn prepare_stream_write(&mut self, io: &mut Io) {
        let stream = io.args().stream.clone();
        let message = MlmProto::from(StreamWrite { stream });
        // One stream to write to: the newest.
        self.replays.retain(|(e, _)| *e != Event::SetProducer);
        self.replays.push((Event::SetProducer, message.clone()));
        io.set_message(message);
    }

    fn prepare_stream_read(&mut self, io: &mut Io) {
        let (stream, pattern) = (io.args().stream.clone(), io.args().pattern.clone());
        let message = MlmProto::from(StreamRead { stream, pattern });
        self.replays.push((Event::SetConsumer, message.clone()));
        io.set_message(message);
    }

    fn prepare_stream_cancel(&mut self, io: &mut Io) {
        let stream = io.args().stream.clone();
        self.replays
            .retain(|(_, m)| !matches!(m, MlmProto::StreamRead(r) if r.stream == stream));
        io.set_message(StreamCancel { stream }.into());
    }

    fn prepare_service_offer(&mut self, io: &mut Io) {
        let (address, pattern) = (io.args().address.clone(), io.args().pattern.clone());
        let message = MlmProto::from(ServiceOffer { address, pattern });
        self.replays.push((Event::SetWorker, message.clone()));
        io.set_message(message);
    }

    fn replay_first_command(&mut self, io: &mut Io) {
        self.replay_at = 0;
        self.replay_next_command(io);
    }

    fn replay_next_command(&mut self, io: &mut Io) {
        match self.replays.get(self.replay_at) {
            Some((event, message)) => {
                self.replay_at += 1;
                io.set_message(message.clone());
                io.set_next_event(*event);
            }
            None => io.set_next_event(Event::ReplayDone),
        }
    }
}

impl MlmClient {
    /// A client with upstream's timers (heartbeat 1 s, expiry 4 s), on a
    /// reactor thread of its own.
    pub fn with_defaults() -> Result<Self, ClientError> {
        Self::new(ClientState::default())
    }

    /// Publish `parts` under `subject` to the producer stream.
    pub fn send_text(&self, subject: &str, parts: &[&str]) -> Result<(), ClientError> {
        self.send(stream_text(subject, parts))
    }

    /// Send `parts` to the mailbox `address`; with a non-empty `tracker`,
    /// a CONFIRM is asked for; `timeout` (ms, 0: for ever) bounds delivery.
    pub fn sendto_text(
        &self,
        address: &str,
        subject: &str,
        tracker: &str,
        timeout: u32,
        parts: &[&str],
    ) -> Result<(), ClientError> {
        self.sendto(MailboxSend::from(Text::new(
            address, subject, tracker, timeout, parts,
        )))
    }

    /// Send `parts` to a worker of the service `address`.
    pub fn sendfor_text(
        &self,
        address: &str,
        subject: &str,
        tracker: &str,
        timeout: u32,
        parts: &[&str],
    ) -> Result<(), ClientError> {
        self.sendfor(ServiceSend::from(Text::new(
            address, subject, tracker, timeout, parts,
        )))
    }
}

/// A Malamute client for async code (the generated [`AsyncClient`]): the
/// same methods as [`MlmClient`]'s, as futures, on any executor.
pub type AsyncMlmClient = AsyncClient<ClientState>;

impl AsyncMlmClient {
    /// A client with upstream's timers (heartbeat 1 s, expiry 4 s), on a
    /// reactor thread of its own.
    pub fn with_defaults() -> Result<Self, ClientError> {
        Self::new(ClientState::default())
    }

    /// Publish `parts` under `subject` to the producer stream.
    pub async fn send_text(&self, subject: &str, parts: &[&str]) -> Result<(), ClientError> {
        self.send(stream_text(subject, parts)).await
    }

    /// Send `parts` to the mailbox `address` ([`MlmClient::sendto_text`]).
    pub async fn sendto_text(
        &self,
        address: &str,
        subject: &str,
        tracker: &str,
        timeout: u32,
        parts: &[&str],
    ) -> Result<(), ClientError> {
        let message = MailboxSend::from(Text::new(address, subject, tracker, timeout, parts));
        self.sendto(message).await
    }

    /// Send `parts` to a worker of the service `address`.
    pub async fn sendfor_text(
        &self,
        address: &str,
        subject: &str,
        tracker: &str,
        timeout: u32,
        parts: &[&str],
    ) -> Result<(), ClientError> {
        let message = ServiceSend::from(Text::new(address, subject, tracker, timeout, parts));
        self.sendfor(message).await
    }
}

fn stream_text(subject: &str, parts: &[&str]) -> StreamSend {
    StreamSend {
        subject: subject.to_owned(),
        content: frames(parts),
    }
}

/// A text message to a mailbox or a service, as the `*_text` methods take
/// it.
struct Text {
    address: String,
    subject: String,
    tracker: String,
    timeout: u32,
    content: Vec<zproto_runtime::bytes::Bytes>,
}

impl Text {
    fn new(address: &str, subject: &str, tracker: &str, timeout: u32, parts: &[&str]) -> Self {
        Self {
            address: address.to_owned(),
            subject: subject.to_owned(),
            tracker: tracker.to_owned(),
            timeout,
            content: frames(parts),
        }
    }
}

/// Both messages carry a [`Text`]'s fields, by the same names.
macro_rules! from_text {
    ($($message:ident),*) => {$(
        impl From<Text> for $message {
            fn from(text: Text) -> Self {
                let Text { address, subject, tracker, timeout, content } = text;
                Self { address, subject, tracker, timeout, content }
            }
        }
    )*};
}

from_text!(MailboxSend, ServiceSend);

fn frames(parts: &[&str]) -> Vec<zproto_runtime::bytes::Bytes> {
    parts
        .iter()
        .map(|p| zproto_runtime::bytes::Bytes::copy_from_slice(p.as_bytes()))
        .collect()
}
