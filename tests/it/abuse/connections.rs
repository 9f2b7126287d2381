//! Connections: silent, slow, HTTP/2-preface-only and idle sockets are closed on time, and one
//! address holding thousands of sockets cannot keep anyone else out.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::harness::{Backend, Proc, Server, Site};

/// Wait for the server to close `c`; returns how long that took (`None`: still open at `max`).
async fn closed_within(c: &mut TcpStream, max: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(max.saturating_sub(started.elapsed()), c.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue, // a response or the server's HTTP/2 SETTINGS: keep reading
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partial_h2_and_idle_connections_are_closed_on_time() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(
        &site,
        &[
            ("KEYMINT_HEADER_TIMEOUT", "1s"),
            ("KEYMINT_IDLE_TIMEOUT", "1s"),
        ],
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let h2_preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // An empty SETTINGS frame after the preface: a real HTTP/2 client, then silence.
    let mut h2_settings = h2_preface.to_vec();
    h2_settings.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("nothing", vec![]),
        ("part of a request line", b"GET /hea".to_vec()),
        (
            "headers that never end",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec(),
        ),
        ("an HTTP/2 preface", h2_preface.to_vec()),
        ("an HTTP/2 preface and SETTINGS", h2_settings),
        (
            "one request, then keep-alive silence",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
    ];
    let mut tasks = Vec::new();
    for (name, bytes) in cases {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(&addr).await.unwrap();
            c.write_all(&bytes).await.unwrap();
            (name, closed_within(&mut c, Duration::from_secs(5)).await)
        }));
    }
    for t in tasks {
        let (name, closed) = t.await.unwrap();
        let after = closed.unwrap_or_else(|| panic!("{name}: still open after 5 s"));
        // Deadline 1 s; the bound allows for a loaded CI machine, not for "never".
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(3),
            "{name}: closed after {after:?}, expected about 1 s"
        );
    }
    // Trickling bytes that never make a request does not keep a connection open either.
    let mut c = TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        if c.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut buf = [0u8; 64];
    closed |= matches!(
        tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    );
    assert!(
        closed,
        "a trickling connection was still open after {:?}",
        started.elapsed()
    );
    s.stop().await;
}

/// A keymint child whose file-descriptor limit is the common 1,024 (soft and hard).
async fn spawn_with_fd_limit(site: &Site, extra: &[(&str, &str)]) -> Proc {
    // SAFETY (inside pre_exec): setrlimit is async-signal-safe.
    unsafe fn limit() -> std::io::Result<()> {
        let lim = libc::rlimit {
            rlim_cur: 1024,
            rlim_max: 1024,
        };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    Proc::spawn_with(site, extra, |cmd| {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure only calls setrlimit between fork and exec.
        unsafe {
            cmd.pre_exec(|| limit());
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_thousand_silent_sockets_from_one_address_keep_nobody_else_out() {
    super::raise_fd_limit();
    let site = Site::new(Backend::Sqlite).await;
    let p = spawn_with_fd_limit(&site, &[]).await;
    let addr: SocketAddr = p.base.trim_start_matches("http://").parse().unwrap();

    // The attacker: 4,000 connections from 127.0.0.1 that never send a byte.
    let mut held = Vec::with_capacity(4000);
    for i in 0..4000 {
        match TcpStream::connect(addr).await {
            Ok(c) => held.push(c),
            Err(e) => panic!("attacker connect failed after {}: {e}", held.len()),
        }
        if i % 100 == 99 {
            // Let the server drain its accept queue: past the listen backlog the kernel may
            // complete a handshake the server never sees, which would read as "held" below.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // A client from another address is served at once.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let r = other.get(p.url("/healthz")).send().await;
    let served_in = started.elapsed();
    let r = r.expect("a client from another address must be served");
    assert_eq!(r.status(), 200);
    assert!(
        served_in < Duration::from_secs(1),
        "served in {served_in:?} while 4,000 sockets were held"
    );

    // How many of the attacker's sockets does the server still hold? Closed ones read EOF.
    let mut set = tokio::task::JoinSet::new();
    for mut c in held {
        set.spawn(async move {
            let mut b = [0u8; 1];
            // Still open: the read is still waiting when the timeout fires.
            tokio::time::timeout(Duration::from_millis(500), c.read(&mut b))
                .await
                .is_err()
        });
    }
    let mut open = 0;
    while let Some(r) = set.join_next().await {
        open += usize::from(r.unwrap());
    }
    eprintln!(
        "4,000 silent sockets from one address: {open} held by the server, \
         another address served in {} ms",
        served_in.as_millis()
    );
    assert!(
        open <= 256,
        "the server holds {open} sockets of one address"
    );
    assert!(
        open >= 200,
        "only {open} accepted: the per-address cap is 256"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_is_configurable_and_returns_slots() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(
        &site,
        &[
            ("KEYMINT_MAX_CONNECTIONS_PER_ADDRESS", "4"),
            ("KEYMINT_HEADER_TIMEOUT", "1s"),
        ],
    )
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut socks = Vec::new();
    for _ in 0..4 {
        socks.push(TcpStream::connect(&addr).await.unwrap());
    }
    // The fifth from the same address is closed at once.
    let mut fifth = TcpStream::connect(&addr).await.unwrap();
    let closed = closed_within(&mut fifth, Duration::from_millis(500)).await;
    assert!(closed.is_some(), "a fifth connection was accepted");
    // From another address: served.
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut c = sock.connect(addr.parse().unwrap()).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).await.unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // Once the silent ones are closed by the deadline, the address gets its slots back.
    drop(socks);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = s.get("/healthz", None).await;
    assert_eq!(r.status(), 200);
    s.stop().await;
}
