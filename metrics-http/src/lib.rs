//! A small HTTP/1.1 endpoint that serves one text, a service's metrics, to
//! scrapers such as Prometheus, and stays up against clients that try to
//! exhaust it.
//!
//! The request side is hyper's parser; the server runs on a tokio runtime
//! with one thread of its own, so the program that embeds it needs no async
//! runtime and never sees one. Each scrape calls the caller's `render`
//! function (on a blocking thread, at most one at a time), and a rendered
//! text is reused for [`Limits::reuse_for`] so that a client asking in a
//! loop cannot make the service render in a loop.
//!
//! ```
//! use zproto_metrics_http::{Limits, MetricsServer};
//!
//! let server = MetricsServer::start("127.0.0.1:0", Limits::default(), || {
//!     Ok("# TYPE up gauge\nup 1\n# EOF\n".to_owned())
//! })?;
//! println!("scrape http://{}/metrics", server.address());
//! drop(server); // stops it, and closes every connection
//! # Ok::<(), zproto_metrics_http::Error>(())
//! ```
//!
//! # Bounds
//! Every resource a client can make the server hold is bounded, and the
//! bounds are [`Limits`]:
//! - **Request head**: at most [`Limits::max_head_bytes`] bytes and
//!   [`Limits::max_headers`] header lines, read within
//!   [`Limits::head_timeout`]; a longer or slower head ends the connection.
//!   Request bodies are never read.
//! - **Connections**: at most [`Limits::max_connections`] at once. A new
//!   connection beyond that is accepted and another one is closed to make
//!   room: first one that has never sent a whole request head (an idle or
//!   slowloris client), else the one whose last request is the oldest. A
//!   well-behaved scraper, which sends its request as it connects, thus
//!   always gets in.
//! - **Idle time**: a connection with nothing to read for
//!   [`Limits::idle_timeout`] is closed.
//! - **Writes**: a response the client does not take for
//!   [`Limits::write_timeout`] (a client that pipelines requests and never
//!   reads) ends the connection.
//! - **Descriptors**: when `accept` fails (`EMFILE`: the process is out of
//!   descriptors), the server closes its least useful connection and
//!   accepts the next, or, holding none, waits 50 ms and tries again; it
//!   reports this (rate-limited) in the log and in [`Stats::accept_errors`],
//!   and serves again as soon as descriptors are free.
//!
//! Memory is thus at most `max_connections` times (the head buffer, about
//! `max_head_bytes` plus hyper's write buffer, a few KiB, plus the response
//! being written), plus one rendered text per page: under 2 MiB with the
//! defaults and a metrics text of some KiB.
//!
//! Beside `/metrics`, a service may serve plain-text [`Page`]s for its
//! operator (a broker's client names, say), rendered and bounded the same
//! way.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Sleep;
use zproto_runtime::throttle::Throttle;

mod text;
pub use text::{sample, OpenMetrics};

/// What the server lets one client, and all of them, hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once (64).
    pub max_connections: usize,
    /// Bytes of a request line and its headers (8 KiB; hyper needs at
    /// least 8,192).
    pub max_head_bytes: usize,
    /// Header lines in a request (32).
    pub max_headers: usize,
    /// Time to receive a whole request head, from its first byte (5 s).
    pub head_timeout: Duration,
    /// Time a connection may stay with nothing to read (30 s).
    pub idle_timeout: Duration,
    /// Time a response may wait for the client to take any of it (5 s).
    pub write_timeout: Duration,
    /// How long a rendered text answers further scrapes (20 ms).
    pub reuse_for: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            head_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(5),
            reuse_for: Duration::from_millis(20),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The address could not be bound.
    #[error("cannot serve metrics on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        source: io::Error,
    },
    /// The server's thread or runtime could not be made.
    #[error("cannot start the metrics server: {0}")]
    Start(io::Error),
}

/// The text a scrape gets, or why there is none (answered with 503).
pub type Rendered = Result<String, String>;

/// What the server has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Connections closed to make room for a newer one.
    pub evicted: u64,
    /// Connections ended by a bound: a head too long, too slow or too
    /// large, an idle or write timeout.
    pub cut: u64,
    /// Failed `accept` calls (out of descriptors, mostly).
    pub accept_errors: u64,
    /// Responses produced.
    pub responses: u64,
    /// Times `render` was called.
    pub renders: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    evicted: AtomicU64,
    cut: AtomicU64,
    accept_errors: AtomicU64,
    responses: AtomicU64,
    renders: AtomicU64,
}

/// A running metrics endpoint; dropping it stops it and closes every
/// connection.
pub struct MetricsServer {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// A plain-text page served beside `/metrics`.
pub struct Page {
    path: &'static str,
    render: RenderFn,
}

impl Page {
    /// `render`'s text at `path` (which starts with `/`), as
    /// `text/plain`.
    pub fn new(path: &'static str, render: impl Fn() -> Rendered + Send + Sync + 'static) -> Self {
        Self {
            path,
            render: Box::new(render),
        }
    }
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page").field("path", &self.path).finish()
    }
}

impl MetricsServer {
    /// Serves `render`'s text at `http://ADDRESS/metrics`. `address` is
    /// `host:port`; port 0 picks a free one, which
    /// [`MetricsServer::address`] tells.
    pub fn start(
        address: &str,
        limits: Limits,
        render: impl Fn() -> Rendered + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        Self::start_with_pages(address, limits, render, Vec::new())
    }

    /// [`MetricsServer::start`], and `pages` beside `/metrics`.
    pub fn start_with_pages(
        address: &str,
        limits: Limits,
        render: impl Fn() -> Rendered + Send + Sync + 'static,
        pages: Vec<Page>,
    ) -> Result<Self, Error> {
        let bind_error = |source| Error::Bind {
            address: address.to_owned(),
            source,
        };
        let listener = listen(address).map_err(bind_error)?;
        let bound = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            // Renders run here, one at a time (see `Shared::text`).
            .max_blocking_threads(1)
            .thread_name("metrics-http-render")
            .build()
            .map_err(Error::Start)?;
        let shared = Arc::new(Shared {
            limits,
            render: Box::new(render),
            counters: Counters::default(),
            slots: Mutex::new(Slots::default()),
            rendered: tokio::sync::Mutex::new(None),
            pages: pages
                .into_iter()
                .map(|page| (page, tokio::sync::Mutex::new(None)))
                .collect(),
        });
        let (stop, stopped) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || runtime.block_on(accept_loop(listener, serving, stopped)))
            .map_err(Error::Start)?;
        Ok(Self {
            address: bound,
            stop: Some(stop),
            thread: Some(thread),
            shared,
        })
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// What it has done so far.
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        Stats {
            accepted: c.accepted.load(Ordering::Relaxed),
            open: self.shared.open() as u64,
            evicted: c.evicted.load(Ordering::Relaxed),
            cut: c.cut.load(Ordering::Relaxed),
            accept_errors: c.accept_errors.load(Ordering::Relaxed),
            responses: c.responses.load(Ordering::Relaxed),
            renders: c.renders.load(Ordering::Relaxed),
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The listen backlog: room for a crowd of connections that the server
/// accepts (and sorts out) a little later, so that a scraper's SYN is
/// queued, never dropped (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// A non-blocking listener on the first address `address` resolves to.
fn listen(address: &str) -> io::Result<StdListener> {
    use std::net::ToSocketAddrs;
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address to bind");
    for addr in address.to_socket_addrs()? {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        match socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(BACKLOG))
        {
            Ok(()) => {
                socket.set_nonblocking(true)?;
                return Ok(socket.into());
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

type RenderFn = Box<dyn Fn() -> Rendered + Send + Sync>;

struct Shared {
    limits: Limits,
    render: RenderFn,
    counters: Counters,
    slots: Mutex<Slots>,
    /// The last text rendered and when; the async lock also makes renders
    /// one at a time, so a crowd of scrapes costs one render.
    rendered: Cache,
    /// The other pages, each with its cache.
    pages: Vec<(Page, Cache)>,
}

/// A rendered text and when it was rendered.
type Cache = tokio::sync::Mutex<Option<(Instant, Arc<Rendered>)>>;

/// The open connections, by the order they were accepted.
#[derive(Default)]
struct Slots {
    next: u64,
    open: BTreeMap<u64, Slot>,
}

struct Slot {
    /// Ends the connection's task (and so closes its socket).
    abort: Option<AbortHandle>,
    /// When a request head last arrived on it; `None` if none ever has.
    requested: Option<Instant>,
}

impl Shared {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // A panic cannot happen while the lock is held (only map updates),
        // but a poisoned lock must not stop the server either.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self) -> usize {
        self.slots().open.len()
    }

    /// Closes the connection least worth keeping: one that never sent a
    /// whole request head (the oldest such), else the one whose last
    /// request is the oldest.
    fn evict_one(&self) -> bool {
        let mut slots = self.slots();
        let victim = slots
            .open
            .iter()
            .filter(|(_, slot)| slot.abort.is_some())
            .min_by_key(|(id, slot)| (slot.requested.is_some(), slot.requested, **id))
            .map(|(id, _)| *id);
        let Some(id) = victim else { return false };
        if let Some(abort) = slots.open.remove(&id).and_then(|slot| slot.abort) {
            abort.abort();
        }
        self.counters.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The text to answer with: the last one if still fresh, else a new
    /// render (on the blocking thread, so the server keeps accepting and
    /// evicting meanwhile).
    /// `page`: `None` for the metrics, else an index in `pages`.
    async fn text(self: &Arc<Self>, page: Option<usize>) -> Arc<Rendered> {
        let cache = match page.and_then(|i| self.pages.get(i)) {
            Some((_, cache)) => cache,
            None => &self.rendered,
        };
        let mut rendered = cache.lock().await;
        if let Some((at, text)) = rendered.as_ref() {
            if at.elapsed() < self.limits.reuse_for {
                return text.clone();
            }
        }
        let shared = self.clone();
        let text = match tokio::task::spawn_blocking(move || {
            shared.counters.renders.fetch_add(1, Ordering::Relaxed);
            match page.and_then(|i| shared.pages.get(i)) {
                Some((page, _)) => (page.render)(),
                None => (shared.render)(),
            }
        })
        .await
        {
            Ok(text) => Arc::new(text),
            Err(e) => Arc::new(Err(format!("rendering failed: {e}"))),
        };
        *rendered = Some((Instant::now(), text.clone()));
        text
    }
}

/// Removes its connection from the open set when the connection's task
/// ends, however it ends (finished, failed, or aborted).
struct SlotGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.shared.slots().open.remove(&self.id);
    }
}

async fn accept_loop(
    listener: StdListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("metrics server cannot listen: {e}");
            return;
        }
    };
    let mut throttle = Throttle::new(1, Duration::from_secs(10));
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                while shared.open() >= shared.limits.max_connections.max(1) {
                    if !shared.evict_one() {
                        break;
                    }
                }
                admit(stream, &shared);
                // Let the new connection read the request it may already
                // hold before more are accepted: in a flood of connections
                // it would otherwise be pushed out before its first poll.
                tokio::task::yield_now().await;
            }
            Err(e) => {
                shared
                    .counters
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(suppressed) = throttle.allow(Instant::now()) {
                    tracing::warn!(
                        "metrics server cannot accept a connection: {e} \
                         (closing one to make room; {suppressed} more such errors not logged)"
                    );
                }
                // Out of descriptors, the pending connection stays in the
                // backlog and the listener stays readable. Free one of ours
                // and take the next (a scraper may be queued behind idle
                // connections); with none of ours to free, wait rather than
                // spin.
                if shared.evict_one() {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    // Returning drops the runtime's tasks, and with them every connection.
}

fn admit(stream: TcpStream, shared: &Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let id = {
        let mut slots = shared.slots();
        let id = slots.next;
        slots.next += 1;
        slots.open.insert(
            id,
            Slot {
                abort: None,
                requested: None,
            },
        );
        id
    };
    let guard = SlotGuard {
        shared: shared.clone(),
        id,
    };
    let task = tokio::spawn(serve(stream, guard));
    if let Some(slot) = shared.slots().open.get_mut(&id) {
        slot.abort = Some(task.abort_handle());
    }
}

async fn serve(stream: TcpStream, guard: SlotGuard) {
    let shared = guard.shared.clone();
    let limits = &shared.limits;
    let io = TokioIo::new(Guarded {
        stream,
        idle_timeout: limits.idle_timeout,
        write_timeout: limits.write_timeout,
        reading: None,
        writing: None,
    });
    let id = guard.id;
    let for_requests = shared.clone();
    let service = hyper::service::service_fn(move |request| {
        let shared = for_requests.clone();
        async move { Ok::<_, Infallible>(respond(request, &shared, id).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.head_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .max_headers(limits.max_headers)
        .serve_connection(io, service);
    if let Err(e) = connection.await {
        // Whatever ended it (a bound, or the client), it is the client's
        // doing: count it, and log it only when debugging.
        shared.counters.cut.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("metrics connection ended: {e}");
    }
    drop(guard);
}

async fn respond(
    request: Request<Incoming>,
    shared: &Arc<Shared>,
    id: u64,
) -> Response<Full<Bytes>> {
    if let Some(slot) = shared.slots().open.get_mut(&id) {
        slot.requested = Some(Instant::now());
    }
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => match shared.text(None).await.as_ref() {
            Ok(text) => {
                let mut response = Response::new(Full::new(Bytes::from(text.clone())));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
        },
        (&Method::GET, path) => match shared.pages.iter().position(|(p, _)| p.path == path) {
            Some(i) => match shared.text(Some(i)).await.as_ref() {
                Ok(text) => plain(StatusCode::OK, text.clone()),
                Err(why) => plain(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
            },
            None => plain(StatusCode::NOT_FOUND, "not found: try /metrics\n".into()),
        },
        _ => {
            // A body we never read could be anything: do not keep the
            // connection for a next request that would start inside it.
            let mut response = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed\n".into(),
            );
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            response
        }
    };
    shared.counters.responses.fetch_add(1, Ordering::Relaxed);
    response
}

fn plain(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A TCP stream whose reads end with `TimedOut` after `idle_timeout` with
/// nothing to read, and whose writes end so after `write_timeout` with no
/// byte taken.
struct Guarded {
    stream: TcpStream,
    idle_timeout: Duration,
    write_timeout: Duration,
    reading: Option<Pin<Box<Sleep>>>,
    writing: Option<Pin<Box<Sleep>>>,
}

/// `Pending`, unless the timer in `slot` (started now if none is) has run
/// out.
fn pending_until(
    slot: &mut Option<Pin<Box<Sleep>>>,
    after: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Error> {
    let timer = slot.get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
    match timer.as_mut().poll(cx) {
        Poll::Ready(()) => Poll::Ready(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not keep up",
        )),
        Poll::Pending => Poll::Pending,
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.reading = None;
                Poll::Ready(result)
            }
            Poll::Pending => pending_until(&mut this.reading, this.idle_timeout, cx).map(Err),
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.writing = None;
                Poll::Ready(result)
            }
            Poll::Pending => pending_until(&mut this.writing, this.write_timeout, cx).map(Err),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_shutdown(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => pending_until(&mut this.writing, this.write_timeout, cx).map(Err),
        }
    }
}
