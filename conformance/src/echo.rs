//! The hand-written side of our own echo protocol (`models/echo_*.xml`):
//! the client's actions, and the server's (which has none: its replies
//! carry the requests' same-named fields). Tests run both over the hosts.

use std::time::Duration;

use crate::echo_client_engine::{replies, Actions, Io, Reply};
use crate::echo_msg::{EchoMsg, HelloOk, Note, Said, Say};
use crate::echo_server_engine;

/// The server's actions: none, and sessions hold nothing.
#[derive(Debug, Default)]
pub struct EchoServer;

impl echo_server_engine::Actions for EchoServer {
    type Session = ();
}

/// One echo client's state: its timers.
#[derive(Debug, Clone)]
pub struct EchoClient {
    /// PING interval once connected.
    pub heartbeat: Duration,
    /// Silence after which the server counts as gone.
    pub expiry: Duration,
}

impl Default for EchoClient {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(200),
            // Wide enough that a loaded machine is not a gone server.
            expiry: Duration::from_millis(1000),
        }
    }
}

impl Actions for EchoClient {
    fn use_plain_credentials(&mut self, io: &mut Io) {
        let (user, password) = (io.args().username.clone(), io.args().password.clone());
        io.use_plain(&user, &password);
    }

    fn signal_success(&mut self, io: &mut Io) {
        io.reply(Reply::Success(replies::Success { status: 0 }));
    }

    fn connect_to_server(&mut self, io: &mut Io) {
        let endpoint = io.args().endpoint.clone();
        if io.connect(&endpoint).is_err() {
            io.set_exception(crate::echo_client_engine::Event::BadEndpoint);
        }
    }

    fn use_connect_timeout(&mut self, io: &mut Io) {
        let timeout = Duration::from_millis(u64::from(io.args().timeout));
        io.set_expiry(timeout);
    }

    fn signal_failure(&mut self, io: &mut Io) {
        io.reply(Reply::Failure(replies::Failure {
            status: -1,
            reason: "not connected".to_owned(),
        }));
    }

    fn client_is_connected(&mut self, _hello_ok: &mut HelloOk, io: &mut Io) {
        io.set_connected(true);
        io.set_heartbeat(self.heartbeat);
        io.set_expiry(self.expiry);
    }

    fn prepare_echo(&mut self, io: &mut Io) {
        let body = io.args().body.clone();
        io.set_message(EchoMsg::Say(Say { body }));
    }

    fn signal_echoed(&mut self, said: &mut Said, io: &mut Io) {
        let body = std::mem::take(&mut said.body);
        io.reply(Reply::Echoed(replies::Echoed { body }));
    }

    fn client_is_disconnected(&mut self, io: &mut Io) {
        io.set_connected(false);
    }

    fn pass_note_to_app(&mut self, note: &mut Note, io: &mut Io) {
        io.deliver(EchoMsg::Note(std::mem::take(note)));
    }
}
