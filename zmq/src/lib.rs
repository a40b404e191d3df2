//! Safe bindings to the libzmq that `zproto-zmq-sys` builds (with
//! libsodium for CURVE, and eventfd on Linux), for zproto-rs and the crates
//! built on it.
//!
//! Why not the `zmq` crate: it depends on crates.io's `zmq-sys`, which
//! builds libzmq without libsodium, and a crate outside this workspace
//! cannot swap that for ours without a `[patch]` of its own. With our own
//! bindings, a crate that depends on `zproto-runtime` gets the same libzmq
//! as the workspace, CURVE included, with nothing to copy. The API is the
//! part of the `zmq` crate's that zproto-rs uses, under the same names, so
//! that code written against either reads the same (depend on it as
//! `zmq = { package = "zproto-zmq", ... }`). Both cannot be in one build:
//! each links a libzmq.
//!
//! ```
//! let ctx = zmq::Context::new();
//! let server = ctx.socket(zmq::REP)?;
//! server.bind("inproc://doc")?;
//! let client = ctx.socket(zmq::REQ)?;
//! client.connect("inproc://doc")?;
//! client.send("ping", 0)?;
//! assert_eq!(server.recv_bytes(0)?, b"ping");
//! # Ok::<(), zmq::Error>(())
//! ```

use std::ffi::{c_void, CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_int};
use std::sync::Arc;

pub use zmq_sys::RawFd;

/// What a libzmq call returns when it fails.
pub type Result<T> = std::result::Result<T, Error>;

/// A libzmq error: an errno value, named as libzmq's documentation names
/// them.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    EACCES,
    EADDRINUSE,
    EAGAIN,
    EBUSY,
    ECONNREFUSED,
    EFAULT,
    EINTR,
    EHOSTUNREACH,
    EINPROGRESS,
    EINVAL,
    EMFILE,
    EMSGSIZE,
    ENAMETOOLONG,
    ENODEV,
    ENOENT,
    ENOMEM,
    ENOTCONN,
    ENOTSOCK,
    EPROTO,
    EPROTONOSUPPORT,
    ENOTSUP,
    ENOBUFS,
    ENETDOWN,
    EADDRNOTAVAIL,
    ECONNRESET,
    ECONNABORTED,
    ETIMEDOUT,
    /// The operation is not allowed in the socket's current state.
    EFSM,
    /// The transport's protocol is not compatible with the socket type.
    ENOCOMPATPROTO,
    /// The context was terminated.
    ETERM,
    /// No I/O thread is available.
    EMTHREAD,
    /// Any other errno value.
    Other(i32),
}

const HAUSNUMERO: i32 = zmq_sys::ZMQ_HAUSNUMERO as i32;

const ERRNOS: &[(Error, i32)] = &[
    (Error::EACCES, libc::EACCES),
    (Error::EADDRINUSE, libc::EADDRINUSE),
    (Error::EAGAIN, libc::EAGAIN),
    (Error::EBUSY, libc::EBUSY),
    (Error::ECONNREFUSED, libc::ECONNREFUSED),
    (Error::EFAULT, libc::EFAULT),
    (Error::EINTR, libc::EINTR),
    (Error::EHOSTUNREACH, libc::EHOSTUNREACH),
    (Error::EINPROGRESS, libc::EINPROGRESS),
    (Error::EINVAL, libc::EINVAL),
    (Error::EMFILE, libc::EMFILE),
    (Error::EMSGSIZE, libc::EMSGSIZE),
    (Error::ENAMETOOLONG, libc::ENAMETOOLONG),
    (Error::ENODEV, libc::ENODEV),
    (Error::ENOENT, libc::ENOENT),
    (Error::ENOMEM, libc::ENOMEM),
    (Error::ENOTCONN, libc::ENOTCONN),
    (Error::ENOTSOCK, libc::ENOTSOCK),
    (Error::EPROTO, libc::EPROTO),
    (Error::EPROTONOSUPPORT, libc::EPROTONOSUPPORT),
    (Error::ENOTSUP, libc::ENOTSUP),
    (Error::ENOBUFS, libc::ENOBUFS),
    (Error::ENETDOWN, libc::ENETDOWN),
    (Error::EADDRNOTAVAIL, libc::EADDRNOTAVAIL),
    (Error::ECONNRESET, libc::ECONNRESET),
    (Error::ECONNABORTED, libc::ECONNABORTED),
    (Error::ETIMEDOUT, libc::ETIMEDOUT),
    (Error::EFSM, HAUSNUMERO + 51),
    (Error::ENOCOMPATPROTO, HAUSNUMERO + 52),
    (Error::ETERM, HAUSNUMERO + 53),
    (Error::EMTHREAD, HAUSNUMERO + 54),
];

impl Error {
    /// The error of an errno value.
    pub fn from_raw(raw: i32) -> Self {
        ERRNOS
            .iter()
            .find(|(_, errno)| *errno == raw)
            .map_or(Error::Other(raw), |(error, _)| *error)
    }

    /// Its errno value.
    pub fn to_raw(self) -> i32 {
        match self {
            Error::Other(raw) => raw,
            known => ERRNOS
                .iter()
                .find(|(error, _)| *error == known)
                .map_or(0, |(_, errno)| *errno),
        }
    }

    /// libzmq's text for it (`zmq_strerror`).
    pub fn message(self) -> String {
        // SAFETY: zmq_strerror returns a static NUL-terminated string.
        unsafe { CStr::from_ptr(zmq_sys::zmq_strerror(self.to_raw())) }
            .to_string_lossy()
            .into_owned()
    }

    fn last() -> Self {
        // SAFETY: reads the calling thread's errno.
        Self::from_raw(unsafe { zmq_sys::zmq_errno() })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::from_raw_os_error(e.to_raw())
    }
}

/// `rc`, or the last error if it is -1.
fn check(rc: c_int) -> Result<c_int> {
    if rc == -1 {
        Err(Error::last())
    } else {
        Ok(rc)
    }
}

/// Do not wait (`ZMQ_DONTWAIT`).
pub const DONTWAIT: i32 = zmq_sys::ZMQ_DONTWAIT as i32;
/// More frames follow (`ZMQ_SNDMORE`).
pub const SNDMORE: i32 = zmq_sys::ZMQ_SNDMORE as i32;

/// The kinds of socket.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum SocketType {
    PAIR = zmq_sys::ZMQ_PAIR as i32,
    PUB = zmq_sys::ZMQ_PUB as i32,
    SUB = zmq_sys::ZMQ_SUB as i32,
    REQ = zmq_sys::ZMQ_REQ as i32,
    REP = zmq_sys::ZMQ_REP as i32,
    DEALER = zmq_sys::ZMQ_DEALER as i32,
    ROUTER = zmq_sys::ZMQ_ROUTER as i32,
    PULL = zmq_sys::ZMQ_PULL as i32,
    PUSH = zmq_sys::ZMQ_PUSH as i32,
    XPUB = zmq_sys::ZMQ_XPUB as i32,
    XSUB = zmq_sys::ZMQ_XSUB as i32,
    STREAM = zmq_sys::ZMQ_STREAM as i32,
}

pub use SocketType::*;

/// A socket's security mechanism (`ZMQ_MECHANISM`).
#[allow(missing_docs, non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    ZMQ_NULL,
    ZMQ_PLAIN,
    ZMQ_CURVE,
    ZMQ_GSSAPI,
}

/// Events a socket monitor reports (`zmq_socket_monitor(3)`).
#[allow(missing_docs, non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum SocketEvent {
    CONNECTED = zmq_sys::ZMQ_EVENT_CONNECTED as u16,
    CONNECT_DELAYED = zmq_sys::ZMQ_EVENT_CONNECT_DELAYED as u16,
    CONNECT_RETRIED = zmq_sys::ZMQ_EVENT_CONNECT_RETRIED as u16,
    LISTENING = zmq_sys::ZMQ_EVENT_LISTENING as u16,
    BIND_FAILED = zmq_sys::ZMQ_EVENT_BIND_FAILED as u16,
    ACCEPTED = zmq_sys::ZMQ_EVENT_ACCEPTED as u16,
    ACCEPT_FAILED = zmq_sys::ZMQ_EVENT_ACCEPT_FAILED as u16,
    CLOSED = zmq_sys::ZMQ_EVENT_CLOSED as u16,
    CLOSE_FAILED = zmq_sys::ZMQ_EVENT_CLOSE_FAILED as u16,
    DISCONNECTED = zmq_sys::ZMQ_EVENT_DISCONNECTED as u16,
    MONITOR_STOPPED = zmq_sys::ZMQ_EVENT_MONITOR_STOPPED as u16,
    HANDSHAKE_FAILED_NO_DETAIL = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL as u16,
    HANDSHAKE_SUCCEEDED = zmq_sys::ZMQ_EVENT_HANDSHAKE_SUCCEEDED as u16,
    HANDSHAKE_FAILED_PROTOCOL = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL as u16,
    HANDSHAKE_FAILED_AUTH = zmq_sys::ZMQ_EVENT_HANDSHAKE_FAILED_AUTH as u16,
    ALL = zmq_sys::ZMQ_EVENT_ALL as u16,
}

impl SocketEvent {
    /// The event's bit, as monitors report it.
    pub fn to_raw(self) -> u16 {
        self as u16
    }
}

/// The events a socket is ready for (`ZMQ_EVENTS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PollEvents(i16);

/// Ready to receive.
pub const POLLIN: PollEvents = PollEvents(zmq_sys::ZMQ_POLLIN as i16);
/// Ready to send.
pub const POLLOUT: PollEvents = PollEvents(zmq_sys::ZMQ_POLLOUT as i16);
/// An error condition.
pub const POLLERR: PollEvents = PollEvents(zmq_sys::ZMQ_POLLERR as i16);

impl PollEvents {
    /// Whether every event of `other` is in `self`.
    pub fn contains(self, other: PollEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// The raw bits.
    pub fn bits(self) -> i16 {
        self.0
    }
}

/// Whether libzmq was built with `capability` ("curve", "ipc", ...).
pub fn has(capability: &str) -> Option<bool> {
    let capability = CString::new(capability).ok()?;
    // SAFETY: a NUL-terminated string for the duration of the call.
    Some(unsafe { zmq_sys::zmq_has(capability.as_ptr()) } == 1)
}

/// libzmq's version: major, minor, patch.
pub fn version() -> (i32, i32, i32) {
    let (mut major, mut minor, mut patch) = (0, 0, 0);
    // SAFETY: three valid out-pointers.
    unsafe { zmq_sys::zmq_version(&mut major, &mut minor, &mut patch) };
    (major, minor, patch)
}

/// Data whose length is not a multiple of 4 cannot be Z85-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeError;

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Z85 encodes data whose length is a multiple of 4")
    }
}

impl std::error::Error for EncodeError {}

/// Text that is not Z85: a length not a multiple of 5, or a character
/// outside its alphabet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError;

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not Z85 text")
    }
}

impl std::error::Error for DecodeError {}

/// `data` as Z85 text (ZeroMQ's RFC 32).
pub fn z85_encode(data: &[u8]) -> std::result::Result<String, EncodeError> {
    if data.len() % 4 != 0 {
        return Err(EncodeError);
    }
    let mut text = vec![0u8; data.len() / 4 * 5 + 1];
    // SAFETY: `text` holds the encoded length plus the NUL libzmq writes.
    let done = unsafe {
        zmq_sys::zmq_z85_encode(
            text.as_mut_ptr().cast::<c_char>(),
            data.as_ptr(),
            data.len(),
        )
    };
    if done.is_null() {
        return Err(EncodeError);
    }
    text.pop();
    String::from_utf8(text).map_err(|_| EncodeError)
}

/// The data that the Z85 `text` encodes.
pub fn z85_decode(text: &str) -> std::result::Result<Vec<u8>, DecodeError> {
    if text.len() % 5 != 0 {
        return Err(DecodeError);
    }
    let text = CString::new(text).map_err(|_| DecodeError)?;
    let mut data = vec![0u8; text.as_bytes().len() / 5 * 4];
    // SAFETY: `data` holds the decoded length; `text` is NUL-terminated.
    let done = unsafe { zmq_sys::zmq_z85_decode(data.as_mut_ptr(), text.as_ptr()) };
    if done.is_null() {
        Err(DecodeError)
    } else {
        Ok(data)
    }
}

/// A CURVE key pair, 32 bytes each.
#[derive(Clone, PartialEq, Eq)]
pub struct CurveKeyPair {
    /// The public key.
    pub public_key: [u8; 32],
    /// The secret key.
    pub secret_key: [u8; 32],
}

impl fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurveKeyPair")
            .field(
                "public_key",
                &z85_encode(&self.public_key).unwrap_or_default(),
            )
            .finish_non_exhaustive()
    }
}

impl CurveKeyPair {
    /// A new key pair (`zmq_curve_keypair`); an error if libzmq has no
    /// CURVE.
    pub fn new() -> Result<Self> {
        let mut public = [0u8; 41];
        let mut secret = [0u8; 41];
        // SAFETY: two 41-byte buffers, as zmq_curve_keypair(3) asks.
        check(unsafe {
            zmq_sys::zmq_curve_keypair(
                public.as_mut_ptr().cast::<c_char>(),
                secret.as_mut_ptr().cast::<c_char>(),
            )
        })?;
        let key = |text: &[u8; 41]| -> Result<[u8; 32]> {
            let text = std::str::from_utf8(&text[..40]).map_err(|_| Error::EINVAL)?;
            z85_decode(text)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(Error::EINVAL)
        };
        Ok(Self {
            public_key: key(&public)?,
            secret_key: key(&secret)?,
        })
    }
}

struct RawContext(*mut c_void);

// SAFETY: a libzmq context is thread-safe (zmq_ctx_new(3)).
unsafe impl Send for RawContext {}
// SAFETY: as above.
unsafe impl Sync for RawContext {}

impl Drop for RawContext {
    fn drop(&mut self) {
        // Every socket holds the context: the last one is closed by now.
        loop {
            // SAFETY: the context is live until this call succeeds.
            let rc = unsafe { zmq_sys::zmq_ctx_term(self.0) };
            if rc == 0 || Error::last() != Error::EINTR {
                break;
            }
        }
    }
}

/// A libzmq context; its sockets keep it alive, and it is terminated when
/// the last handle and socket are gone.
#[derive(Clone)]
pub struct Context {
    raw: Arc<RawContext>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Context")
    }
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    /// A new context.
    ///
    /// # Panics
    /// If libzmq cannot make one (out of memory or descriptors), as
    /// `zmq_ctx_new` then returns nothing to work with.
    pub fn new() -> Self {
        // SAFETY: a plain constructor.
        let raw = unsafe { zmq_sys::zmq_ctx_new() };
        assert!(!raw.is_null(), "zmq_ctx_new failed: {}", Error::last());
        Self {
            raw: Arc::new(RawContext(raw)),
        }
    }

    /// A new socket of `kind` in this context.
    pub fn socket(&self, kind: SocketType) -> Result<Socket> {
        // SAFETY: a live context.
        let raw = unsafe { zmq_sys::zmq_socket(self.raw.0, kind as c_int) };
        if raw.is_null() {
            return Err(Error::last());
        }
        Ok(Socket {
            raw,
            _context: Some(self.raw.clone()),
        })
    }

    /// `ZMQ_IO_THREADS`.
    pub fn get_io_threads(&self) -> Result<i32> {
        // SAFETY: a live context.
        check(unsafe { zmq_sys::zmq_ctx_get(self.raw.0, zmq_sys::ZMQ_IO_THREADS as c_int) })
    }

    /// Set `ZMQ_IO_THREADS` (before the first socket).
    pub fn set_io_threads(&self, threads: i32) -> Result<()> {
        // SAFETY: a live context.
        check(unsafe {
            zmq_sys::zmq_ctx_set(self.raw.0, zmq_sys::ZMQ_IO_THREADS as c_int, threads)
        })
        .map(drop)
    }
}

/// A libzmq message (one frame).
pub struct Message {
    msg: zmq_sys::zmq_msg_t,
}

// SAFETY: a message is plain data owned by this value.
unsafe impl Send for Message {}

impl Drop for Message {
    fn drop(&mut self) {
        // SAFETY: the message was initialised and is closed once.
        unsafe { zmq_sys::zmq_msg_close(&mut self.msg) };
    }
}

impl Default for Message {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Message").field(&&self[..]).finish()
    }
}

impl Message {
    /// An empty message.
    pub fn new() -> Self {
        let mut msg = zmq_sys::zmq_msg_t::default();
        // SAFETY: zmq_msg_init cannot fail.
        unsafe { zmq_sys::zmq_msg_init(&mut msg) };
        Self { msg }
    }

    /// A message of `size` bytes (zeroed).
    pub fn with_size(size: usize) -> Self {
        let mut msg = zmq_sys::zmq_msg_t::default();
        // SAFETY: on failure (out of memory) the message is left empty,
        // which is initialised.
        let rc = unsafe { zmq_sys::zmq_msg_init_size(&mut msg, size) };
        assert_eq!(rc, 0, "zmq_msg_init_size({size}) failed: out of memory");
        let mut message = Self { msg };
        message.fill(0);
        message
    }

    /// Whether more frames of the same message follow.
    pub fn get_more(&self) -> bool {
        // SAFETY: an initialised message.
        unsafe { zmq_sys::zmq_msg_more(&self.msg) == 1 }
    }

    /// A metadata property of a received message ("Socket-Type",
    /// "Routing-Id", "User-Id", "Peer-Address", or libzmq's "__fd").
    pub fn gets(&self, property: &str) -> Option<&str> {
        let property = CString::new(property).ok()?;
        // SAFETY: an initialised message; the value lives as long as the
        // message (zmq_msg_gets(3)).
        let value = unsafe { zmq_sys::zmq_msg_gets(&self.msg, property.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: NUL-terminated, owned by the message.
        unsafe { CStr::from_ptr(value) }.to_str().ok()
    }

    /// The bytes as UTF-8 text, if they are.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self).ok()
    }
}

impl std::ops::Deref for Message {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: data and size describe the message's buffer, valid while
        // the message lives and is not modified.
        unsafe {
            let msg = std::ptr::addr_of!(self.msg).cast_mut();
            let size = zmq_sys::zmq_msg_size(msg);
            if size == 0 {
                return &[];
            }
            std::slice::from_raw_parts(zmq_sys::zmq_msg_data(msg).cast::<u8>(), size)
        }
    }
}

impl std::ops::DerefMut for Message {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for Deref, with exclusive access.
        unsafe {
            let size = zmq_sys::zmq_msg_size(&self.msg);
            if size == 0 {
                return &mut [];
            }
            std::slice::from_raw_parts_mut(zmq_sys::zmq_msg_data(&mut self.msg).cast::<u8>(), size)
        }
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Self {
        let mut message = Self::with_size(data.len());
        message.copy_from_slice(data);
        message
    }
}

impl<const N: usize> From<[u8; N]> for Message {
    fn from(data: [u8; N]) -> Self {
        Self::from(&data[..])
    }
}

impl<const N: usize> From<&[u8; N]> for Message {
    fn from(data: &[u8; N]) -> Self {
        Self::from(&data[..])
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::from(&data[..])
    }
}

impl From<&Vec<u8>> for Message {
    fn from(data: &Vec<u8>) -> Self {
        Self::from(&data[..])
    }
}

impl From<Box<[u8]>> for Message {
    fn from(data: Box<[u8]>) -> Self {
        Self::from(&data[..])
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::from(text.as_bytes())
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::from(text.as_bytes())
    }
}

impl From<&String> for Message {
    fn from(text: &String) -> Self {
        Self::from(text.as_bytes())
    }
}

/// A libzmq socket; closed when dropped. It may move between threads, but
/// only one uses it at a time (libzmq sockets are not thread-safe).
pub struct Socket {
    raw: *mut c_void,
    /// Keeps the context alive while the socket lives.
    _context: Option<Arc<RawContext>>,
}

// SAFETY: a socket may be used from any one thread at a time (zmq(7));
// `&mut`/ownership rules keep it to one.
unsafe impl Send for Socket {}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Socket")
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the socket is open, and closed once.
        unsafe { zmq_sys::zmq_close(self.raw) };
    }
}

macro_rules! int_options {
    ($($set:ident, $get:ident, $option:ident, $doc:literal;)*) => {$(
        #[doc = concat!("Set `", stringify!($option), "`: ", $doc)]
        pub fn $set(&self, value: i32) -> Result<()> {
            self.setsockopt_int(zmq_sys::$option, value)
        }

        #[doc = concat!("`", stringify!($option), "`: ", $doc)]
        pub fn $get(&self) -> Result<i32> {
            self.getsockopt_int(zmq_sys::$option)
        }
    )*};
}

macro_rules! bool_options {
    ($($set:ident, $get:ident, $option:ident, $doc:literal;)*) => {$(
        #[doc = concat!("Set `", stringify!($option), "`: ", $doc)]
        pub fn $set(&self, value: bool) -> Result<()> {
            self.setsockopt_int(zmq_sys::$option, i32::from(value))
        }

        #[doc = concat!("`", stringify!($option), "`: ", $doc)]
        pub fn $get(&self) -> Result<bool> {
            self.getsockopt_int(zmq_sys::$option).map(|v| v != 0)
        }
    )*};
}

macro_rules! bytes_options {
    ($($set:ident, $option:ident, $doc:literal;)*) => {$(
        #[doc = concat!("Set `", stringify!($option), "`: ", $doc)]
        pub fn $set(&self, value: &[u8]) -> Result<()> {
            self.setsockopt_bytes(zmq_sys::$option, value)
        }
    )*};
}

macro_rules! text_options {
    ($($set:ident, $option:ident, $doc:literal;)*) => {$(
        #[doc = concat!("Set `", stringify!($option), "` (`None`: unset): ", $doc)]
        pub fn $set(&self, value: Option<&str>) -> Result<()> {
            self.setsockopt_bytes(zmq_sys::$option, value.unwrap_or("").as_bytes())
        }
    )*};
}

impl Socket {
    /// A socket made by `zmq_socket` elsewhere (in a context the caller
    /// keeps alive for as long as the socket lives).
    ///
    /// # Safety
    /// `raw` is an open libzmq socket that nothing else closes or uses.
    pub unsafe fn from_raw(raw: *mut c_void) -> Self {
        Self {
            raw,
            _context: None,
        }
    }

    /// The libzmq socket, for calls this crate does not wrap.
    pub fn as_mut_ptr(&mut self) -> *mut c_void {
        self.raw
    }

    fn setsockopt_int(&self, option: u32, value: i32) -> Result<()> {
        self.setsockopt_raw(
            option,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>(),
        )
    }

    fn setsockopt_bytes(&self, option: u32, value: &[u8]) -> Result<()> {
        self.setsockopt_raw(option, value.as_ptr().cast(), value.len())
    }

    fn setsockopt_raw(&self, option: u32, value: *const c_void, size: usize) -> Result<()> {
        let option = c_int::try_from(option).map_err(|_| Error::EINVAL)?;
        // SAFETY: an open socket; `value` points to `size` bytes.
        check(unsafe { zmq_sys::zmq_setsockopt(self.raw, option, value, size) }).map(drop)
    }

    fn getsockopt_int(&self, option: u32) -> Result<i32> {
        let mut value: i32 = 0;
        let mut size = std::mem::size_of::<i32>();
        let option = c_int::try_from(option).map_err(|_| Error::EINVAL)?;
        // SAFETY: an open socket; room for an int.
        check(unsafe {
            zmq_sys::zmq_getsockopt(self.raw, option, (&mut value as *mut i32).cast(), &mut size)
        })?;
        Ok(value)
    }

    fn getsockopt_bytes(&self, option: u32, room: usize) -> Result<Vec<u8>> {
        let mut value = vec![0u8; room];
        let mut size = room;
        let option = c_int::try_from(option).map_err(|_| Error::EINVAL)?;
        // SAFETY: an open socket; `room` bytes to write into.
        check(unsafe {
            zmq_sys::zmq_getsockopt(self.raw, option, value.as_mut_ptr().cast(), &mut size)
        })?;
        value.truncate(size);
        Ok(value)
    }

    int_options! {
        set_linger, get_linger, ZMQ_LINGER, "how long pending messages are kept at close (ms, -1: for ever)";
        set_rcvtimeo, get_rcvtimeo, ZMQ_RCVTIMEO, "how long a receive waits (ms, -1: for ever)";
        set_sndtimeo, get_sndtimeo, ZMQ_SNDTIMEO, "how long a send waits (ms, -1: for ever)";
        set_sndhwm, get_sndhwm, ZMQ_SNDHWM, "the high-water mark of outgoing messages";
        set_rcvhwm, get_rcvhwm, ZMQ_RCVHWM, "the high-water mark of incoming messages";
        set_rcvbuf, get_rcvbuf, ZMQ_RCVBUF, "the kernel receive buffer (bytes)";
        set_sndbuf, get_sndbuf, ZMQ_SNDBUF, "the kernel send buffer (bytes)";
        set_reconnect_ivl, get_reconnect_ivl, ZMQ_RECONNECT_IVL, "the first reconnection interval (ms)";
        set_reconnect_ivl_max, get_reconnect_ivl_max, ZMQ_RECONNECT_IVL_MAX, "the longest reconnection interval (ms)";
        set_heartbeat_ivl, get_heartbeat_ivl, ZMQ_HEARTBEAT_IVL, "the interval between ZMTP heartbeats (ms)";
        set_heartbeat_timeout, get_heartbeat_timeout, ZMQ_HEARTBEAT_TIMEOUT, "how long to wait for a heartbeat's answer (ms)";
        set_heartbeat_ttl, get_heartbeat_ttl, ZMQ_HEARTBEAT_TTL, "how long the peer may wait for our heartbeats (ms)";
        set_handshake_ivl, get_handshake_ivl, ZMQ_HANDSHAKE_IVL, "the longest handshake (ms)";
        set_backlog, get_backlog, ZMQ_BACKLOG, "the listen backlog";
        set_tcp_keepalive, get_tcp_keepalive, ZMQ_TCP_KEEPALIVE, "TCP keepalive (-1: the system's)";
    }

    bool_options! {
        set_router_mandatory, get_router_mandatory, ZMQ_ROUTER_MANDATORY, "a send to an unknown routing id fails (EHOSTUNREACH)";
        set_router_handover, get_router_handover, ZMQ_ROUTER_HANDOVER, "a new connection takes over a routing id in use";
        set_immediate, get_immediate, ZMQ_IMMEDIATE, "queue messages only to completed connections";
        set_plain_server, is_plain_server, ZMQ_PLAIN_SERVER, "be a PLAIN server";
        set_curve_server, is_curve_server, ZMQ_CURVE_SERVER, "be a CURVE server";
        set_probe_router, get_probe_router, ZMQ_PROBE_ROUTER, "send an empty message on connecting";
        set_conflate, get_conflate, ZMQ_CONFLATE, "keep only the last message";
        set_ipv6, is_ipv6, ZMQ_IPV6, "IPv6 on tcp";
        set_xpub_verbose, get_xpub_verbose, ZMQ_XPUB_VERBOSE, "pass every subscription up";
    }

    bytes_options! {
        set_identity, ZMQ_ROUTING_ID, "the routing id peers see";
        set_subscribe, ZMQ_SUBSCRIBE, "subscribe to a prefix";
        set_unsubscribe, ZMQ_UNSUBSCRIBE, "unsubscribe from a prefix";
        set_curve_publickey, ZMQ_CURVE_PUBLICKEY, "our CURVE public key (32 bytes, or 40 Z85 characters)";
        set_curve_secretkey, ZMQ_CURVE_SECRETKEY, "our CURVE secret key (32 bytes, or 40 Z85 characters)";
        set_curve_serverkey, ZMQ_CURVE_SERVERKEY, "the CURVE server's public key (32 bytes, or 40 Z85 characters)";
    }

    text_options! {
        set_plain_username, ZMQ_PLAIN_USERNAME, "the PLAIN user name";
        set_plain_password, ZMQ_PLAIN_PASSWORD, "the PLAIN password";
    }

    /// Set `ZMQ_MAXMSGSIZE`: the largest message accepted (-1: any).
    pub fn set_maxmsgsize(&self, value: i64) -> Result<()> {
        self.setsockopt_raw(
            zmq_sys::ZMQ_MAXMSGSIZE,
            (&value as *const i64).cast(),
            std::mem::size_of::<i64>(),
        )
    }

    /// Set `ZMQ_ZAP_DOMAIN`: the ZAP domain of this socket's peers.
    pub fn set_zap_domain(&self, domain: &str) -> Result<()> {
        self.setsockopt_bytes(zmq_sys::ZMQ_ZAP_DOMAIN, domain.as_bytes())
    }

    /// `ZMQ_FD`: a descriptor that becomes readable when the socket's
    /// events may have changed (edge-triggered; read `get_events`).
    pub fn get_fd(&self) -> Result<RawFd> {
        let mut fd: RawFd = -1;
        let mut size = std::mem::size_of::<RawFd>();
        // SAFETY: an open socket; room for a descriptor.
        check(unsafe {
            zmq_sys::zmq_getsockopt(
                self.raw,
                zmq_sys::ZMQ_FD as c_int,
                (&mut fd as *mut RawFd).cast(),
                &mut size,
            )
        })?;
        Ok(fd)
    }

    /// `ZMQ_EVENTS`: what the socket is ready for now.
    pub fn get_events(&self) -> Result<PollEvents> {
        self.getsockopt_int(zmq_sys::ZMQ_EVENTS)
            .map(|bits| PollEvents(bits as i16))
    }

    /// `ZMQ_RCVMORE`: whether the last frame received has more after it.
    pub fn get_rcvmore(&self) -> Result<bool> {
        self.getsockopt_int(zmq_sys::ZMQ_RCVMORE).map(|v| v != 0)
    }

    /// `ZMQ_MECHANISM`.
    pub fn get_mechanism(&self) -> Result<Mechanism> {
        Ok(match self.getsockopt_int(zmq_sys::ZMQ_MECHANISM)? as u32 {
            zmq_sys::ZMQ_PLAIN => Mechanism::ZMQ_PLAIN,
            zmq_sys::ZMQ_CURVE => Mechanism::ZMQ_CURVE,
            zmq_sys::ZMQ_GSSAPI => Mechanism::ZMQ_GSSAPI,
            _ => Mechanism::ZMQ_NULL,
        })
    }

    /// `ZMQ_LAST_ENDPOINT`: where the last bind or connect went (with the
    /// port a wildcard bind got), or its bytes if they are not UTF-8.
    pub fn get_last_endpoint(&self) -> Result<std::result::Result<String, Vec<u8>>> {
        let mut bytes = self.getsockopt_bytes(zmq_sys::ZMQ_LAST_ENDPOINT, 1024)?;
        if bytes.last() == Some(&0) {
            bytes.pop();
        }
        Ok(String::from_utf8(bytes).map_err(|e| e.into_bytes()))
    }

    /// `ZMQ_ROUTING_ID`.
    pub fn get_identity(&self) -> Result<Vec<u8>> {
        self.getsockopt_bytes(zmq_sys::ZMQ_ROUTING_ID, 255)
    }

    fn endpoint_call(
        &self,
        endpoint: &str,
        call: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
    ) -> Result<()> {
        let endpoint = CString::new(endpoint).map_err(|_| Error::EINVAL)?;
        // SAFETY: an open socket and a NUL-terminated endpoint.
        check(unsafe { call(self.raw, endpoint.as_ptr()) }).map(drop)
    }

    /// Accept connections on `endpoint`.
    pub fn bind(&self, endpoint: &str) -> Result<()> {
        self.endpoint_call(endpoint, zmq_sys::zmq_bind)
    }

    /// Stop accepting on `endpoint`.
    pub fn unbind(&self, endpoint: &str) -> Result<()> {
        self.endpoint_call(endpoint, zmq_sys::zmq_unbind)
    }

    /// Connect to `endpoint` (libzmq reconnects by itself).
    pub fn connect(&self, endpoint: &str) -> Result<()> {
        self.endpoint_call(endpoint, zmq_sys::zmq_connect)
    }

    /// Disconnect from `endpoint`.
    pub fn disconnect(&self, endpoint: &str) -> Result<()> {
        self.endpoint_call(endpoint, zmq_sys::zmq_disconnect)
    }

    /// Report `events` (a [`SocketEvent`] bit set) on a PAIR socket bound
    /// at `endpoint` (`inproc://` only), as zmq_socket_monitor(3) says.
    pub fn monitor(&self, endpoint: &str, events: i32) -> Result<()> {
        let endpoint = CString::new(endpoint).map_err(|_| Error::EINVAL)?;
        // SAFETY: an open socket and a NUL-terminated endpoint.
        check(unsafe { zmq_sys::zmq_socket_monitor(self.raw, endpoint.as_ptr(), events) }).map(drop)
    }

    /// Send one frame.
    pub fn send<T: Into<Message>>(&self, data: T, flags: i32) -> Result<()> {
        let mut message = data.into();
        // SAFETY: an open socket and an initialised message; on success
        // libzmq has taken the content and left the message empty.
        check(unsafe { zmq_sys::zmq_msg_send(&mut message.msg, self.raw, flags) }).map(drop)
    }

    /// Send every frame of `frames` as one message.
    pub fn send_multipart<I, T>(&self, frames: I, flags: i32) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: Into<Message>,
    {
        let mut frames = frames.into_iter().peekable();
        while let Some(frame) = frames.next() {
            let more = if frames.peek().is_some() { SNDMORE } else { 0 };
            self.send(frame, flags | more)?;
        }
        Ok(())
    }

    /// Receive one frame into `message`.
    pub fn recv(&self, message: &mut Message, flags: i32) -> Result<()> {
        // SAFETY: an open socket and an initialised message.
        check(unsafe { zmq_sys::zmq_msg_recv(&mut message.msg, self.raw, flags) }).map(drop)
    }

    /// Receive one frame.
    pub fn recv_msg(&self, flags: i32) -> Result<Message> {
        let mut message = Message::new();
        self.recv(&mut message, flags)?;
        Ok(message)
    }

    /// Receive one frame's bytes.
    pub fn recv_bytes(&self, flags: i32) -> Result<Vec<u8>> {
        self.recv_msg(flags).map(|m| m.to_vec())
    }

    /// Receive one frame as text, or its bytes if it is not UTF-8.
    pub fn recv_string(&self, flags: i32) -> Result<std::result::Result<String, Vec<u8>>> {
        self.recv_bytes(flags)
            .map(|bytes| String::from_utf8(bytes).map_err(|e| e.into_bytes()))
    }

    /// Receive one frame into `buffer`: its length (which may exceed the
    /// buffer's: the rest was cut).
    pub fn recv_into(&self, buffer: &mut [u8], flags: i32) -> Result<usize> {
        // SAFETY: an open socket; `buffer` has room for its length.
        let n = check(unsafe {
            zmq_sys::zmq_recv(self.raw, buffer.as_mut_ptr().cast(), buffer.len(), flags)
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Receive every frame of one message.
    pub fn recv_multipart(&self, flags: i32) -> Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        loop {
            let message = self.recv_msg(flags)?;
            let more = message.get_more();
            frames.push(message.to_vec());
            if !more {
                return Ok(frames);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_their_errno() {
        for (error, errno) in ERRNOS {
            assert_eq!(Error::from_raw(*errno), *error);
            assert_eq!(error.to_raw(), *errno);
        }
        assert_eq!(Error::from_raw(99_999), Error::Other(99_999));
        assert!(!Error::ETERM.message().is_empty());
    }

    #[test]
    fn z85_round_trips_and_refuses_bad_input() {
        let data = [0x86, 0x4f, 0xd2, 0x6f, 0xb5, 0x59, 0xf7, 0x5b];
        let text = z85_encode(&data).expect("encodes");
        assert_eq!(text, "HelloWorld");
        assert_eq!(z85_decode(&text).expect("decodes"), data);
        assert_eq!(z85_encode(&[1, 2, 3]), Err(EncodeError));
        assert_eq!(z85_decode("abcd"), Err(DecodeError));
        assert_eq!(z85_decode("abc\u{7f}e"), Err(DecodeError));
    }

    #[test]
    fn libzmq_has_curve_and_makes_key_pairs() {
        assert_eq!(has("curve"), Some(true), "built without libsodium");
        let pair = CurveKeyPair::new().expect("a key pair");
        assert_ne!(pair.public_key, pair.secret_key);
    }

    #[test]
    fn multipart_messages_keep_their_frames_and_metadata() {
        let ctx = Context::new();
        let router = ctx.socket(ROUTER).expect("router");
        router.bind("inproc://zproto-zmq-multipart").expect("bind");
        let dealer = ctx.socket(DEALER).expect("dealer");
        dealer
            .connect("inproc://zproto-zmq-multipart")
            .expect("connect");
        dealer
            .send_multipart([&b"a"[..], b"", b"ccc"], 0)
            .expect("send");
        let frames = router.recv_multipart(0).expect("recv");
        assert_eq!(frames.len(), 4, "routing id, then the three frames");
        assert_eq!(&frames[1..], [b"a".to_vec(), vec![], b"ccc".to_vec()]);
        assert_eq!(router.get_rcvmore(), Ok(false));
        dealer.set_rcvtimeo(10).expect("timeout");
        assert_eq!(dealer.recv_bytes(0), Err(Error::EAGAIN));
        assert_eq!(dealer.recv_bytes(DONTWAIT), Err(Error::EAGAIN));
        assert!(router.get_events().expect("events").contains(POLLOUT));
    }

    #[test]
    fn a_wildcard_bind_reports_its_port() {
        let ctx = Context::new();
        let socket = ctx.socket(REP).expect("rep");
        socket.bind("tcp://127.0.0.1:*").expect("bind");
        let endpoint = socket.get_last_endpoint().expect("option").expect("utf-8");
        assert!(endpoint.starts_with("tcp://127.0.0.1:"), "{endpoint}");
        assert!(socket.bind("no-such-transport://x").is_err());
        assert_eq!(socket.bind("tcp://127.0.0.1:1\0"), Err(Error::EINVAL));
    }
}
