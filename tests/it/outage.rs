//! A database outage (SPEC section 9), on a throwaway Postgres cluster that the test starts
//! with `initdb`/`pg_ctl` on a free port (never the machine's own service), stops during
//! traffic and starts again.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Backend, Server, Site, me_status};

/// A Postgres cluster of its own: data directory in a temporary directory, a free port,
/// trust authentication on 127.0.0.1. Stopped and removed on drop.
struct TempPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

/// Running as root, the server must run as the `postgres` user (initdb refuses root).
fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl TempPostgres {
    /// `None` when no Postgres server binaries are installed.
    fn start() -> Option<TempPostgres> {
        let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .collect();
        bins.sort();
        let bin = bins.pop()?;
        let dir = tempfile::tempdir().unwrap();
        if as_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let pg = TempPostgres { dir, bin, port };
        let out = pg
            .cmd("initdb")
            .arg("-D")
            .arg(pg.data())
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        pg.start_server();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, prog: &str) -> Command {
        let path = self.bin.join(prog);
        if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn start_server(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-s", "-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("start")
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    fn stop_server(&self) {
        let out = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-s", "-m", "fast", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-s", "-m", "immediate", "stop"])
            .output();
    }
}

/// Postgres stopped under a running keymint: what needs the database answers 503 with
/// `Retry-After` within 2 s, what can be answered from memory is, `/readyz` says 503; started
/// again, everything works within 5 s without a restart, and nothing acknowledged was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_fast_serves_from_memory_and_recovers() {
    // The Postgres half of the suite needs the URL; this test runs its own cluster beside it.
    if Backend::postgres("outage::a_database_outage…").is_none() {
        return;
    }
    let pg = tokio::task::spawn_blocking(TempPostgres::start)
        .await
        .unwrap()
        .expect("Postgres server binaries (initdb, pg_ctl) are installed with the server");
    let site = Site::new(Backend::Postgres(pg.url())).await;
    let s = Server::start(&site, &[]).await;
    let http = reqwest::Client::new();
    s.user("olga", "olga-password-1", &[]).await;
    let (client, secret) = s
        .app
        .clients
        .create(
            &keymint::clients::NewClient {
                name: "api".into(),
                grant_types: vec!["client_credentials".into()],
                scopes: vec![],
                // Introspection shows a client the tokens addressed to its audience.
                audience: Some("http://keymint.test".into()),
                ..Default::default()
            },
            s.app.now(),
        )
        .await
        .unwrap();
    let secret = secret.unwrap();
    let t = s.login("olga", "olga-password-1").await;
    let gone = s.login("olga", "olga-password-1").await;
    let r = s
        .post_json("/auth/logout", &json!({}), Some(&gone.access_token))
        .await;
    assert_eq!(r.status(), 204, "a logout acknowledged before the outage");
    let introspect = |token: String| {
        let (http, url) = (http.clone(), s.url("/oauth/introspect"));
        let (id, secret) = (client.client_id.clone(), secret.clone());
        async move {
            let r = http
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    assert_eq!(me_status(&http, &s.base, &t.access_token).await.0, 200);
    assert_eq!(introspect(t.access_token.clone()).await.1["active"], true);

    let p = tokio::task::spawn_blocking(move || {
        pg.stop_server();
        pg
    })
    .await
    .unwrap();
    // Needs the database: 503 with Retry-After, fast.
    let started = Instant::now();
    let r = s
        .post_json(
            "/auth/login",
            &json!({"username": "olga", "password": "olga-password-1"}),
            None,
        )
        .await;
    let took = started.elapsed();
    assert_eq!(r.status(), 503, "{:?}", r.text().await);
    assert!(r.headers().contains_key("retry-after"));
    assert!(took < Duration::from_secs(2), "503 after {took:?}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "SERVICE_UNAVAILABLE");
    let started = Instant::now();
    assert_eq!(s.get("/readyz", None).await.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(2));
    // From memory: the JWKS, /auth/me of a user just seen, introspection by a client just
    // seen, and the revocation acknowledged before.
    assert_eq!(s.get("/.well-known/jwks.json", None).await.status(), 200);
    assert_eq!(me_status(&http, &s.base, &t.access_token).await.0, 200);
    let (st, body) = introspect(t.access_token.clone()).await;
    assert_eq!((st, &body["active"]), (200, &json!(true)), "{body}");
    let (st, body) = me_status(&http, &s.base, &gone.access_token).await;
    assert_eq!((st, body["error"].as_str()), (401, Some("TOKEN_REVOKED")));
    eprintln!("during the outage: login 503 after {took:?}");

    let pg = tokio::task::spawn_blocking(move || {
        p.start_server();
        p
    })
    .await
    .unwrap();
    let back = Instant::now();
    loop {
        let r = s
            .post_json(
                "/auth/login",
                &json!({"username": "olga", "password": "olga-password-1"}),
                None,
            )
            .await;
        if r.status() == 200 && s.get("/readyz", None).await.status() == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "still failing {:?} after the database came back",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "recovered {:?} after the database came back",
        back.elapsed()
    );
    // Nothing acknowledged was lost: the logout holds, the refresh token still refreshes.
    let (st, _) = me_status(&http, &s.base, &gone.access_token).await;
    assert_eq!(st, 401);
    let r = s
        .post_json(
            "/auth/refresh",
            &json!({"refresh_token": t.refresh_token}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    s.stop().await;
    drop(pg);
}
