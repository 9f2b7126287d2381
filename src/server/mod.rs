//! Running the server: our own accept loop over hyper, so that connection-level limits are
//! explicit, plus background synchronisation, the scheduler, and graceful shutdown.
//!
//! Connection limits (SPEC section 6, "Idle and slow connections"):
//! - a connection must deliver a complete request head within `KEYMINT_HEADER_TIMEOUT` of being
//!   accepted, whatever it sent (nothing, part of a line, an HTTP/2 preface): our own watchdog
//!   measures from accept, because hyper's header-read timer starts only after the
//!   HTTP/1-vs-HTTP/2 detection;
//! - a connection with no request in flight (HTTP/1.1 between requests, HTTP/2 with no open
//!   stream) closes after `KEYMINT_IDLE_TIMEOUT`; bytes that are not a request (pings,
//!   trickled headers) do not keep it open;
//! - at most `KEYMINT_MAX_CONNECTIONS_PER_ADDRESS` per client address (IPv6 per /64; trusted
//!   proxies exempt), and a global cap below the process's file-descriptor limit, so one
//!   address can never take every slot.
//!
//! Shutdown: stop accepting, let in-flight requests finish (their database writes included),
//! stop the scheduler and sync loop, then return so the process exits 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::Service;

use crate::state::{App, AppState};

mod limits;
pub mod tls;
use limits::ConnLimits;

/// Connections held open at once (further ones are closed at accept), unless the process's
/// file-descriptor limit is lower.
pub const MAX_CONNECTIONS: usize = 4096;
/// Descriptors kept free for the database pool, key files and logs.
const FD_RESERVE: u64 = 128;
/// Largest request head (line + headers) hyper buffers; tokens are at most 8 KiB.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a graceful shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection closed for idleness may take to say goodbye (HTTP/2 GOAWAY).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The listeners `serve` runs: the API, and optionally a separate one for `/metrics`.
pub struct Listeners {
    pub api: TcpListener,
    pub metrics: Option<TcpListener>,
    /// HTTPS on the API listener (`KEYMINT_TLS_CERT`, `KEYMINT_TLS_KEY`).
    pub tls: Option<Arc<tls::Tls>>,
}

/// Serve `app` on `listener` until `shutdown` resolves, then drain in-flight requests.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_all(
        app,
        Listeners {
            api: listener,
            metrics: None,
            tls: None,
        },
        shutdown,
    )
    .await
}

/// `serve`, with an optional metrics listener (`KEYMINT_METRICS_BIND`).
pub async fn serve_all(
    app: Arc<App>,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let sync = tokio::spawn(sync_loop(app.clone(), stop_rx.clone()));
    let mut jobs = crate::jobs::start(app.clone())
        .await
        .map_err(std::io::Error::other)?;
    let limits = ConnLimits::from_app(&app);
    let metrics_task = listeners.metrics.map(|l| {
        let router = crate::http::metrics_router(AppState(app.clone()));
        tokio::spawn(accept_loop(
            l,
            router,
            None,
            limits.clone(),
            stop_rx.clone(),
        ))
    });
    if let Some(t) = listeners.tls.clone() {
        tokio::spawn(reload_loop(t, stop_rx.clone()));
    }
    let router = crate::http::router(AppState(app.clone()));
    let (stop_accepting, accepting) = watch::channel(false);
    let api = tokio::spawn(accept_loop(
        listeners.api,
        router,
        listeners.tls,
        limits,
        accepting,
    ));
    shutdown.await;
    tracing::info!("draining in-flight requests");
    let _ = stop_accepting.send(true);
    let _ = api.await;
    let _ = stop_tx.send(true);
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    if let Err(e) = jobs.shutdown().await {
        tracing::warn!("scheduler shutdown: {e}");
    }
    let _ = sync.await;
    app.repeats.flush(&app.db).await;
    Ok(())
}

/// What the watchdog knows about one connection.
struct ConnActivity {
    opened: Instant,
    /// A complete request head has arrived at least once.
    served: AtomicBool,
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request finished.
    last_done_ms: AtomicU64,
}

/// Held while a request is being handled.
struct InFlight(Arc<ConnActivity>);

impl InFlight {
    fn start(a: &Arc<ConnActivity>) -> Self {
        a.served.store(true, SeqCst);
        a.in_flight.fetch_add(1, SeqCst);
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = self.0.opened.elapsed().as_millis() as u64;
        self.0.last_done_ms.store(ms, SeqCst);
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

/// Resolves when the connection has been without a request for too long: `head` after
/// opening when no request head ever arrived, `idle` after the last request finished.
async fn watchdog(a: Arc<ConnActivity>, head: Duration, idle: Duration) {
    loop {
        let deadline = if !a.served.load(SeqCst) {
            a.opened + head
        } else if a.in_flight.load(SeqCst) > 0 {
            Instant::now() + idle
        } else {
            a.opened + Duration::from_millis(a.last_done_ms.load(SeqCst)) + idle
        };
        if Instant::now() >= deadline && a.in_flight.load(SeqCst) == 0 {
            return;
        }
        tokio::time::sleep_until(deadline.into()).await;
    }
}

fn http_builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_concurrent_streams(64);
    builder
}

/// Accept connections on `listener` until `stop` turns true, then drain them.
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<Arc<tls::Tls>>,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) {
    let builder = Arc::new(http_builder());
    // Held by every connection task; the drain waits until all are returned.
    let live = Arc::new(Semaphore::new(limits.total as usize));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let Some(addr_slot) = limits.admit(peer.ip()) else {
            tracing::debug!(%peer, "per-address connection limit reached; closing");
            continue;
        };
        let Ok(slot) = limits.slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit reached; closing new connection");
            continue;
        };
        let Ok(live_slot) = live.clone().try_acquire_owned() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = ConnTask {
            builder: builder.clone(),
            router: router.clone(),
            peer,
            head: limits.head,
            idle: limits.idle,
            stop: stop.clone(),
        };
        let (opened, tls) = (Instant::now(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => conn.run(stream, opened).await,
                // The handshake counts against the deadline for the first request head.
                Some(t) => match tokio::time::timeout(conn.head, t.acceptor.accept(stream)).await {
                    Ok(Ok(s)) => conn.run(s, opened).await,
                    Ok(Err(e)) => tracing::debug!(peer = %conn.peer, "TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!(peer = %conn.peer, "TLS handshake timed out"),
                },
            }
            drop((slot, addr_slot, live_slot));
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, live.acquire_many(limits.total))
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests still running after {DRAIN_TIMEOUT:?}; closing");
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

struct ConnTask {
    builder: Arc<Builder<TokioExecutor>>,
    router: axum::Router,
    peer: SocketAddr,
    head: Duration,
    idle: Duration,
    stop: watch::Receiver<bool>,
}

impl ConnTask {
    async fn run<S>(mut self, stream: S, opened: Instant)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(ConnActivity {
            opened,
            served: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        });
        let (router, peer, act) = (self.router.clone(), self.peer, activity.clone());
        let svc = tower::service_fn(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let guard = InFlight::start(&act);
                let mut router = router.clone();
                async move {
                    let resp = router.call(req).await;
                    drop(guard);
                    resp
                }
            },
        );
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(svc));
        tokio::pin!(conn);
        let drain = tokio::select! {
            _ = conn.as_mut() => return,
            _ = watchdog(activity.clone(), self.head, self.idle) => {
                if !activity.served.load(SeqCst) {
                    // Never spoke HTTP in time: no goodbye owed.
                    return;
                }
                CLOSE_GRACE
            }
            _ = stopped(&mut self.stop) => DRAIN_TIMEOUT,
        };
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(drain, conn).await;
    }
}

/// Pick up a renewed TLS certificate (see `tls`).
async fn reload_loop(t: Arc<tls::Tls>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(tls::RELOAD_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let t = t.clone();
                let _ = tokio::task::spawn_blocking(move || t.reload_if_changed()).await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// Re-read keys and revocations written by other instances every `sync_interval`.
async fn sync_loop(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(app.config.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = app.sync_now().await {
                    tracing::warn!("sync with the database failed: {e}");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutdown requested");
}
