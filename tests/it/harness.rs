//! Test harness: a real keymint on 127.0.0.1:0 over a fresh database, plus helpers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keymint::config::Config;
use keymint::state::App;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The Postgres backend, or `None` (with a clear message) when the URL is unset.
    pub fn postgres(test: &str) -> Option<Backend> {
        match std::env::var("KEYMINT_TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ => {
                eprintln!("SKIPPED {test} on Postgres: KEYMINT_TEST_POSTGRES_URL is not set");
                None
            }
        }
    }
}

/// Run a scenario once on SQLite and once on Postgres (skipped, loudly, without the URL).
#[macro_export]
macro_rules! both_dbs {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(b) = $crate::harness::Backend::postgres(concat!(module_path!())) {
                    super::$name(b).await
                }
            }
        }
    )*};
}

/// A place for one server's data: its database URL and keys directory. Several servers
/// (a restart, or several instances) can share one.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub database_url: String,
    /// Signing keys for this site's in-process servers: committed fixtures first (no RSA work
    /// at start-up), shared by all of them so no kid repeats in the site's database.
    pub key_source: keymint::keys::material::KeySource,
    seeded: std::sync::atomic::AtomicBool,
    /// With `Site::pkcs11`: this site's own SoftHSM2 token (label, user PIN).
    pub pkcs11: Option<(String, String)>,
}

/// The PKCS#11 module the HSM tests use: `KEYMINT_TEST_PKCS11_MODULE`, or Debian's SoftHSM2.
pub fn pkcs11_module() -> Option<PathBuf> {
    let path = std::env::var_os("KEYMINT_TEST_PKCS11_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    path.exists().then_some(path)
}

/// Point SoftHSM2 at this test process's own token directory. SoftHSM reads `SOFTHSM2_CONF`
/// when the module initialises, once per process, so the variable must be set before any
/// thread can read the environment: this runs before `main`, while there is one thread.
#[used]
#[unsafe(link_section = ".init_array")]
static SOFTHSM_CONF: extern "C" fn() = set_softhsm_conf;

extern "C" fn set_softhsm_conf() {
    let dir = softhsm_dir(std::process::id());
    let tokens = dir.join("tokens");
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    );
    if std::fs::create_dir_all(&tokens).is_ok() && std::fs::write(&conf, text).is_ok() {
        // SAFETY: before main, no other thread exists to read the environment meanwhile.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    }
}

fn softhsm_dir(pid: u32) -> PathBuf {
    std::env::temp_dir().join(format!("keymint-softhsm-{pid}"))
}

/// A fresh token in this process's SoftHSM2 directory: (label, user PIN). Tokens are made
/// in-process on the module's free slot (a module initialised earlier sees no token that
/// another process creates later); one at a time, since they share that slot.
fn softhsm_token(module: &Path) -> (String, String) {
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // Directories of test processes that have exited.
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if let Some(pid) = name.strip_prefix("keymint-softhsm-")
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let ctx = keymint::keys::hsm::module(module).unwrap();
    let free = ctx
        .get_all_slots()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).is_ok_and(|t| !t.token_initialized()))
        .expect("SoftHSM2 offers a free slot");
    let label = format!(
        "kmtest-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let pin = format!("pin-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let so = AuthPin::new("so-pin-for-tests".into());
    ctx.init_token(free, &so, &label).unwrap();
    let session = ctx.open_rw_session(free).unwrap();
    session.login(UserType::So, Some(&so)).unwrap();
    session.init_pin(&AuthPin::new(pin.clone().into())).unwrap();
    session.logout().unwrap();
    (label, pin)
}

/// The committed test keys (`tests/fixtures/rsa2048-test-keys.pem`), as PKCS#8 DER.
fn fixture_keys() -> Vec<Vec<u8>> {
    keymint::keys::material::pkcs8_from_pem(include_str!("../fixtures/rsa2048-test-keys.pem"))
        .unwrap()
}

/// The `kid` in a token's header.
pub fn kid(token: &str) -> String {
    segment(token, 0)["kid"].as_str().unwrap().to_string()
}

impl Site {
    pub async fn new(backend: Backend) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match &backend {
            Backend::Sqlite => format!("sqlite://{}/keymint.db", dir.path().display()),
            Backend::Postgres(base) => fresh_postgres(base).await,
        };
        Site {
            dir,
            database_url,
            key_source: keymint::keys::material::KeySource::fixtures_first(fixture_keys()),
            seeded: Default::default(),
            pkcs11: None,
        }
    }

    /// A site whose signing keys are made and kept in its own SoftHSM2 token
    /// (`KEYMINT_SIGNER=pkcs11`). `None`, with a clear message, when SoftHSM2 is not installed.
    pub async fn pkcs11(backend: Backend, test: &str) -> Option<Site> {
        let Some(module) = pkcs11_module() else {
            assert!(
                std::env::var_os("KEYMINT_TEST_REQUIRE_PKCS11").is_none(),
                "{test}: KEYMINT_TEST_REQUIRE_PKCS11 is set but SoftHSM2 is not installed"
            );
            eprintln!(
                "SKIPPED {test} on PKCS#11: SoftHSM2 is not installed (apt install softhsm2)"
            );
            return None;
        };
        let mut site = Site::new(backend).await;
        let token = tokio::task::spawn_blocking(move || softhsm_token(&module))
            .await
            .unwrap();
        site.pkcs11 = Some(token);
        Some(site)
    }

    /// Give the site its first signing keys from the fixtures, through the same start-up as
    /// a server's, so a `keymint serve` child finds them and starts in milliseconds instead
    /// of generating four RSA keys (what a first start does; `keymint serve` on an empty
    /// site still does it where a test wants that).
    pub async fn seed_keys(&self) {
        if self.seeded.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let config = Config::from_sources(None, &self.env(&[])).unwrap();
        let deps = keymint::state::Deps {
            clock: keymint::clock::Clock::system(),
            key_source: self.key_source.clone(),
        };
        let app = App::open_with(config, deps).await.unwrap();
        let _ = app.db.clone().close().await;
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// The variables a server on this site runs with, plus `extra`.
    pub fn env(&self, extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [
            ("KEYMINT_DATABASE_URL", self.database_url.as_str()),
            ("KEYMINT_KEYS_DIR", self.keys_dir().to_str().unwrap()),
            ("KEYMINT_ISSUER", "http://keymint.test"),
            ("KEYMINT_SYNC_INTERVAL", "200ms"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let (Some((token, pin)), Some(module)) = (&self.pkcs11, pkcs11_module()) {
            env.insert("KEYMINT_SIGNER".into(), "pkcs11".into());
            env.insert("KEYMINT_PKCS11_MODULE".into(), module.display().to_string());
            env.insert("KEYMINT_PKCS11_TOKEN".into(), token.clone());
            env.insert("KEYMINT_PKCS11_PIN".into(), pin.clone());
        }
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        env
    }
}

/// Create an empty database next to the one in `base` and return its URL.
async fn fresh_postgres(base: &str) -> String {
    use sea_orm::ConnectionTrait;
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let admin = sea_orm::Database::connect(base)
        .await
        .expect("connect to KEYMINT_TEST_POSTGRES_URL");
    if !SWEPT.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // Drop databases left by test processes that have exited (each name carries its
        // process id); a test process still running, here or in another suite, keeps its own.
        let rows = admin
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT datname FROM pg_database WHERE datname LIKE 'kmtest\\_%'".to_string(),
            ))
            .await
            .unwrap();
        for row in rows {
            let name: String = row.try_get("", "datname").unwrap();
            let pid = name.split('_').nth(1).unwrap_or_default();
            if pid.is_empty() || Path::new("/proc").join(pid).exists() {
                continue;
            }
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
    let name = format!(
        "kmtest_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let _ = admin.close().await;
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("postgres URL with a database name");
    format!("{prefix}/{name}")
}

/// A running server.
pub struct Server {
    pub base: String,
    pub app: Arc<App>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Start keymint on `site` with extra configuration.
    pub async fn start(site: &Site, extra: &[(&str, &str)]) -> Server {
        Self::start_with_clock(site, extra, keymint::clock::Clock::system()).await
    }

    /// `start` on `clock` (e.g. `Clock::frozen_at`, so that no back-off or expiry depends on
    /// how fast the machine runs the test).
    pub async fn start_with_clock(
        site: &Site,
        extra: &[(&str, &str)],
        clock: keymint::clock::Clock,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(site, extra, clock, listener).await
    }

    /// `start` with the issuer set to the server's own address, for relying parties that
    /// discover the JWKS from the issuer.
    pub async fn start_as_issuer(site: &Site, extra: &[(&str, &str)]) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let mut extra = extra.to_vec();
        extra.push(("KEYMINT_ISSUER", &issuer));
        Self::start_on(site, &extra, keymint::clock::Clock::system(), listener).await
    }

    async fn start_on(
        site: &Site,
        extra: &[(&str, &str)],
        clock: keymint::clock::Clock,
        listener: tokio::net::TcpListener,
    ) -> Server {
        let config = Config::from_sources(None, &site.env(extra)).unwrap();
        let deps = keymint::state::Deps {
            clock,
            key_source: site.key_source.clone(),
        };
        let app = Arc::new(App::open_with(config, deps).await.unwrap());
        app.bootstrap(app.now()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(keymint::server::serve(app.clone(), listener, async move {
            let _ = rx.await;
        }));
        Server {
            base,
            app,
            http: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stop accepting, drain, and wait for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        let mut r = self.http.get(self.url(path));
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value, bearer: Option<&str>) -> Response {
        let mut r = self.http.post(self.url(path)).json(body);
        if let Some(t) = bearer {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    /// Create a user directly through the domain (what `keymint users create` does).
    pub async fn user(&self, name: &str, password: &str, roles: &[&str]) -> keymint::users::User {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        self.app
            .users
            .create(name, password, &roles, keymint::clock::system_now())
            .await
            .unwrap()
    }

    /// Log in and return the token response, asserting success.
    pub async fn login(&self, name: &str, password: &str) -> Tokens {
        let r = self
            .post_json(
                "/auth/login",
                &json!({"username": name, "password": password}),
                None,
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "login failed: {}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }
}

#[derive(serde::Deserialize, Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
}

/// Assert an error response: status, `error` code, and (for 401) a Bearer challenge.
pub async fn assert_error(r: Response, status: u16, code: &str) -> Value {
    let got = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "body: {body}"
    );
    assert!(body["message"].is_string(), "error without message: {body}");
    if status == 401 {
        assert!(
            challenge.is_some_and(|c| c.starts_with("Bearer")),
            "401 without WWW-Authenticate: Bearer"
        );
    }
    body
}

/// Decode a JWT segment (0 = header, 1 = payload) without verifying.
pub fn segment(token: &str, i: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A Python interpreter with the third-party clients of `tests/py/requirements.txt`,
/// installed once into `target/test-venv` (`.ci/run` does the same up front).
pub fn python() -> PathBuf {
    static VENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(|| {
        let venv = root().join("target/test-venv");
        let py = venv.join("bin/python");
        let stamp = venv.join(".installed");
        let reqs = root().join("tests/py/requirements.txt");
        let want = std::fs::read_to_string(&reqs).unwrap();
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(want.as_str()) {
            let run = |cmd: &mut std::process::Command| {
                let out = cmd.output().expect("run python3");
                assert!(
                    out.status.success(),
                    "{:?}: {}",
                    cmd,
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            if !py.exists() {
                run(std::process::Command::new("python3")
                    .args(["-m", "venv"])
                    .arg(&venv));
            }
            run(std::process::Command::new(&py)
                .args(["-m", "pip", "install", "-q", "-r"])
                .arg(&reqs));
            std::fs::write(&stamp, want).unwrap();
        }
        py
    })
    .clone()
}

/// A `keymint serve` child process (for multi-instance and crash tests).
pub struct Proc {
    pub child: std::process::Child,
    pub base: String,
    /// `http://addr/metrics` when `KEYMINT_METRICS_BIND` is set.
    pub metrics_url: Option<String>,
}

impl Proc {
    /// Spawn the real binary on `site` on port 0 and wait until `/readyz` answers 200.
    pub async fn spawn(site: &Site, extra: &[(&str, &str)]) -> Proc {
        Self::spawn_with(site, extra, |_| {}).await
    }

    /// `spawn`, with a chance to adjust the command (limits, environment) first. The server
    /// binds port 0 and prints the address it got; no port is guessed.
    pub async fn spawn_with(
        site: &Site,
        extra: &[(&str, &str)],
        tweak: impl FnOnce(&mut std::process::Command),
    ) -> Proc {
        use std::io::BufRead;
        site.seed_keys().await;
        let mut env = site.env(extra);
        env.entry("KEYMINT_BIND".into())
            .or_insert_with(|| "127.0.0.1:0".into());
        env.insert("RUST_LOG".into(), "warn".into());
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keymint"));
        cmd.arg("serve")
            .envs(&env)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        tweak(&mut cmd);
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (base, metrics_url) = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let mut metrics = None;
            for line in lines.by_ref() {
                let line = line.unwrap();
                if let Some(m) = line.strip_prefix("keymint metrics on ") {
                    metrics = Some(m.to_string());
                }
                if let Some(b) = line.strip_prefix("keymint listening on ") {
                    let base = b.to_string();
                    // Keep draining so the child never blocks on a full pipe.
                    std::thread::spawn(move || lines.for_each(drop));
                    return Some((base, metrics));
                }
            }
            None
        })
        .await
        .unwrap()
        .expect("keymint serve exited before listening");
        let p = Proc {
            child,
            base,
            metrics_url,
        };
        if p.base.starts_with("https://") {
            // This client speaks no TLS: the caller checks readiness (tests/it/tls.rs, curl).
            return p;
        }
        let http = reqwest::Client::new();
        for _ in 0..300 {
            let ready = http.get(format!("{}/readyz", p.base)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return p;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("keymint serve on {} did not become ready", p.base);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Log in over HTTP at `base`.
pub async fn login_at(http: &reqwest::Client, base: &str, name: &str, password: &str) -> Tokens {
    let r = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "login at {base}");
    r.json().await.unwrap()
}

/// Status of `/auth/me` at `base` with `token`.
pub async fn me_status(http: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let r = http
        .get(format!("{base}/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Run `keymint ARGS` against the site's database with `stdin` on standard input, off the
/// async workers (the test's servers share them).
pub async fn run_cli(site: &Site, args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keymint"))
        .args(args)
        .envs(site.env(&[]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

/// Open the site's database directly, for assertions on rows.
pub async fn site_db(site: &Site) -> sea_orm::DatabaseConnection {
    keymint::db::connect(&site.database_url).await.unwrap()
}

/// Verify `token` with PyJWT's `PyJWKClient` against `jwks_url` (issuer and audience
/// `http://keymint.test`). Returns the exit code (0 ok, 3 refused) and the JSON printed.
pub fn pyjwt_verify(jwks_url: &str, token: &str) -> (i32, Value) {
    let out = std::process::Command::new(python())
        .arg(root().join("tests/py/verify_jwks.py"))
        .args([
            jwks_url,
            "http://keymint.test",
            "http://keymint.test",
            token,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "verifier printed {stdout:?}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// `token` with `key` set to `value` in its header (`part` 0) or claims (1), signed again with
/// keymint's own private key (the committed test fixture behind its kid), so that only the
/// edit can make a recipe refuse it.
pub fn forge(token: &str, part: usize, key: &str, value: Value) -> String {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use base64::Engine;
    let want = kid(token);
    let der =
        keymint::keys::material::pkcs8_from_pem(include_str!("../fixtures/rsa2048-test-keys.pem"))
            .unwrap()
            .into_iter()
            .find(|der| keymint::keys::material::from_pkcs8_der(der).is_ok_and(|m| m.kid == want))
            .expect("the signing key is a committed fixture");
    let mut parts = [segment(token, 0), segment(token, 1)];
    parts[part][key] = value;
    let [header, claims] =
        parts.map(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(p.to_string()));
    let signed = format!("{header}.{claims}");
    let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
    let mut sig = vec![0; pair.public_modulus_len()];
    let rng = aws_lc_rs::rand::SystemRandom::new();
    pair.sign(&RSA_PKCS1_SHA256, &rng, signed.as_bytes(), &mut sig)
        .unwrap();
    format!(
        "{signed}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    )
}

/// POST `path` as the admin, asserting 200.
pub async fn admin_post(s: &Server, bearer: &str, path: &str) {
    let r = s.http.post(s.url(path)).bearer_auth(bearer).send();
    let r = r.await.unwrap();
    let status = r.status();
    assert_eq!(status, 200, "{path}: {}", r.text().await.unwrap());
}

/// `token` with one character of its signature changed.
pub fn tamper(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').unwrap();
    // Not the last character: its low bits may be padding that decodes the same.
    let mut sig = sig.to_string();
    let flipped = if sig.as_bytes()[10] == b'A' { "B" } else { "A" };
    sig.replace_range(10..11, flipped);
    format!("{signed}.{sig}")
}
