//! The process-wide libzmq context and the sockets made in it.

use super::*;

/// Sockets one process may open (libzmq's default is 1023 per context, too
/// few for a process hosting many nodes; the OS limit on file descriptors,
/// one per socket, still applies).
pub const MAX_SOCKETS: i32 = 65_536;

/// The process-wide libzmq context, created on first use and never
/// terminated.
pub(super) struct Context(*mut std::ffi::c_void);

// SAFETY: a libzmq context is thread-safe (zmq_ctx_new(3)); this one lives
// for the whole process.
unsafe impl Send for Context {}

// SAFETY: as above.
unsafe impl Sync for Context {}

pub(super) fn raw_context() -> Result<*mut std::ffi::c_void, zmq::Error> {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    let context = CONTEXT.get_or_init(|| {
        // SAFETY: plain libzmq calls; a null context is checked below.
        unsafe {
            let ctx = zmq_sys::zmq_ctx_new();
            if !ctx.is_null() {
                zmq_sys::zmq_ctx_set(ctx, zmq_sys::ZMQ_MAX_SOCKETS as i32, MAX_SOCKETS);
            }
            Context(ctx)
        }
    });
    if context.0.is_null() {
        Err(zmq::Error::ENOMEM)
    } else {
        Ok(context.0)
    }
}

/// A new socket in the process-wide context, so that `inproc://` endpoints
/// of all reactors (and of the application) reach each other.
pub fn socket(kind: zmq::SocketType) -> Result<zmq::Socket, zmq::Error> {
    let ctx = raw_context()?;
    // SAFETY: `ctx` is a live context; a null socket is checked, and a
    // non-null one is owned by the returned `zmq::Socket`, which closes it.
    unsafe {
        let raw = zmq_sys::zmq_socket(ctx, kind as i32);
        if raw.is_null() {
            Err(zmq::Error::from_raw(zmq_sys::zmq_errno()))
        } else {
            Ok(zmq::Socket::from_raw(raw))
        }
    }
}
