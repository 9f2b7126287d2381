//! Load driver for the OpenID Connect code flow through the hosted login page, and for
//! `/auth/login` and argon2id alone, so that `benches/code_flow.sh` can put the three side by
//! side in one run. It talks plain HTTP to a running keymint; see that script for the setup.
//!
//!   code_flow flow     N virtual browsers, each running authorize → /login (form) → POST
//!                      /login → authorize again → /oauth/token, over and over
//!   code_flow login    N connections posting /auth/login (JSON)
//!   code_flow argon2   keymint's own argon2id verification in this process, on 1 and on
//!                      KM_THREADS threads (no server)
//!
//! Environment: KM_URL (the issuer, e.g. http://127.0.0.1:8080), KM_CLIENT_ID,
//! KM_CLIENT_SECRET, KM_REDIRECT_URI (http://127.0.0.1:9/cb), KM_USERS (a file of
//! `username:password` lines, used round-robin), KM_CONCURRENCY (64), KM_WARMUP (s, 2),
//! KM_DURATION (s, 10), KM_COUNT (ops per worker instead of a duration: no warm-up),
//! KM_ITERATIONS (argon2, 20), KM_THREADS (argon2, the number of cores).
//!
//! Each flow starts with an empty cookie jar, as a new browser would, and follows no redirect
//! by itself: every step's status, `Location`, cookies and form fields are checked, the ID
//! token's `nonce` too. Results go to stdout as `KMRESULT`/`KMSTEP` lines of `key=value`;
//! progress and errors to stderr. Exits 1 when any request failed, 2 on bad usage. Without
//! KM_URL (`cargo bench` running every bench) it says so and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rand::RngCore;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

const STEPS: [&str; 5] = [
    "authorize",
    "login_form",
    "login_post",
    "authorize_sso",
    "token",
];
/// Error messages kept for the report (all errors are counted).
const KEEP_ERRORS: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Flow,
    Login,
    Argon2,
}

struct Config {
    base: Url,
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_uri: String,
    users: Vec<(String, String)>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    count: Option<u64>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| usage(&format!("{name}={v} is not a number"))),
        Err(_) => default,
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("code_flow: {msg}");
    eprintln!(
        "usage: KM_URL=... [KM_* ...] code_flow flow|login|argon2 (see benches/code_flow.rs)"
    );
    std::process::exit(2)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn main() {
    // `cargo bench` passes `--bench`; the mode is the first other argument.
    let mode = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .or_else(|| std::env::var("KM_MODE").ok())
        .unwrap_or_else(|| "flow".into());
    let mode = match mode.as_str() {
        "flow" => Mode::Flow,
        "login" => Mode::Login,
        "argon2" => Mode::Argon2,
        other => usage(&format!("unknown mode {other:?}")),
    };
    if mode == Mode::Argon2 {
        argon2(env_num("KM_ITERATIONS", 20), env_num("KM_THREADS", cores()));
        return;
    }
    let Ok(url) = std::env::var("KM_URL") else {
        println!("code_flow: KM_URL is not set; run benches/code_flow.sh, which starts keymint");
        return;
    };
    let users_file = std::env::var("KM_USERS").unwrap_or_else(|_| usage("KM_USERS is not set"));
    let users: Vec<(String, String)> = std::fs::read_to_string(&users_file)
        .unwrap_or_else(|e| usage(&format!("cannot read {users_file}: {e}")))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect();
    if users.is_empty() {
        usage(&format!("no username:password lines in {users_file}"));
    }
    let issuer = url.trim_end_matches('/').to_string();
    let cfg = Config {
        base: Url::parse(&issuer).unwrap_or_else(|e| usage(&format!("KM_URL: {e}"))),
        issuer,
        client_id: env_or("KM_CLIENT_ID", ""),
        client_secret: env_or("KM_CLIENT_SECRET", ""),
        redirect_uri: env_or("KM_REDIRECT_URI", "http://127.0.0.1:9/cb"),
        users,
        concurrency: env_num("KM_CONCURRENCY", 64usize).max(1),
        warmup: Duration::from_secs_f64(env_num("KM_WARMUP", 2.0)),
        duration: Duration::from_secs_f64(env_num("KM_DURATION", 10.0)),
        count: std::env::var("KM_COUNT")
            .ok()
            .map(|_| env_num("KM_COUNT", 1u64)),
    };
    if mode == Mode::Flow && cfg.client_id.is_empty() {
        usage("KM_CLIENT_ID and KM_CLIENT_SECRET are needed for the flow");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let errors = rt.block_on(run(Arc::new(cfg), mode));
    if errors > 0 {
        std::process::exit(1);
    }
}

/// keymint's argon2id verification (`users::verify_blocking`, what a login costs), timed
/// `n` times on one thread, then `threads` threads at once doing `n` each.
fn argon2(n: usize, threads: usize) {
    let n = n.max(1);
    let pw = b"correct horse battery staple";
    let hash = keymint::users::hash_blocking(pw).expect("argon2id hash");
    assert!(keymint::users::verify_blocking(&hash, pw)); // warm: allocate the blocks
    let mut one: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            assert!(keymint::users::verify_blocking(&hash, pw));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    one.sort_by(f64::total_cmp);
    let mean = one.iter().sum::<f64>() / n as f64;
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..n {
                    assert!(keymint::users::verify_blocking(&hash, pw));
                }
            });
        }
    });
    let par = (threads * n) as f64 / t.elapsed().as_secs_f64();
    println!(
        "KMRESULT mode=argon2 iterations={n} median_ms={:.2} mean_ms={mean:.2} min_ms={:.2} \
         max_ms={:.2} threads={threads} parallel_per_s={par:.1}",
        pct(&one, 0.5),
        one[0],
        one[n - 1],
    );
}

/// One completed operation: when it ended, how long it took, and its steps (flow only).
struct Sample {
    end: Instant,
    total: Duration,
    steps: [Duration; 5],
}

struct Failure {
    step: &'static str,
    msg: String,
}

fn fail(step: &'static str, msg: impl Into<String>) -> Failure {
    Failure {
        step,
        msg: msg.into(),
    }
}

struct Shared {
    next_user: AtomicUsize,
    errors: AtomicU64,
    kept: std::sync::Mutex<Vec<String>>,
    per_step: [AtomicU64; 5],
}

async fn run(cfg: Arc<Config>, mode: Mode) -> u64 {
    let shared = Arc::new(Shared {
        next_user: AtomicUsize::new(0),
        errors: AtomicU64::new(0),
        kept: std::sync::Mutex::new(Vec::new()),
        per_step: Default::default(),
    });
    let start = Instant::now();
    let (measure_from, until) = match cfg.count {
        Some(_) => (start, None),
        None => (start + cfg.warmup, Some(start + cfg.warmup + cfg.duration)),
    };
    eprintln!(
        "code_flow: {mode:?}, {} workers, {}",
        cfg.concurrency,
        match cfg.count {
            Some(c) => format!("{c} each"),
            None => format!(
                "{:.0}s warm-up + {:.0}s",
                cfg.warmup.as_secs_f64(),
                cfg.duration.as_secs_f64()
            ),
        }
    );
    let mut tasks = Vec::with_capacity(cfg.concurrency);
    for _ in 0..cfg.concurrency {
        let cfg = cfg.clone();
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            worker(&cfg, mode, &shared, until).await
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await.expect("worker panicked"));
    }
    let finished = Instant::now();
    // With a duration: what completed inside the window. With a count: everything.
    let (window, counted): (f64, Vec<&Sample>) = match until {
        Some(until) => (
            cfg.duration.as_secs_f64(),
            samples
                .iter()
                .filter(|s| s.end >= measure_from && s.end <= until)
                .collect(),
        ),
        None => ((finished - start).as_secs_f64(), samples.iter().collect()),
    };
    let mut totals: Vec<f64> = counted.iter().map(|s| ms(s.total)).collect();
    totals.sort_by(f64::total_cmp);
    let errors = shared.errors.load(Ordering::Relaxed);
    let rate = totals.len() as f64 / window;
    let mean = totals.iter().sum::<f64>() / totals.len().max(1) as f64;
    println!(
        "KMRESULT mode={} conc={} window_s={window:.2} ops={} rate={rate:.1} p50_ms={:.1} \
         p90_ms={:.1} p99_ms={:.1} max_ms={:.1} mean_ms={mean:.1} all_ops={} errors={errors}",
        match mode {
            Mode::Flow => "flow",
            Mode::Login => "login",
            Mode::Argon2 => "argon2",
        },
        cfg.concurrency,
        totals.len(),
        pct(&totals, 0.5),
        pct(&totals, 0.9),
        pct(&totals, 0.99),
        totals.last().copied().unwrap_or(0.0),
        samples.len(),
    );
    if mode == Mode::Flow {
        for (i, name) in STEPS.iter().enumerate() {
            let mut v: Vec<f64> = counted.iter().map(|s| ms(s.steps[i])).collect();
            v.sort_by(f64::total_cmp);
            let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
            println!(
                "KMSTEP step={name} p50_ms={:.2} p99_ms={:.2} mean_ms={mean:.2} errors={}",
                pct(&v, 0.5),
                pct(&v, 0.99),
                shared.per_step[i].load(Ordering::Relaxed)
            );
        }
    }
    if errors > 0 {
        eprintln!("code_flow: {errors} failed operations; the first ones:");
        for m in shared.kept.lock().unwrap().iter() {
            eprintln!("  {m}");
        }
    }
    errors
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q` quantile of sorted values (nearest rank), 0 when empty.
fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One virtual browser (flow) or connection (login): its own client, so its own connection.
async fn worker(cfg: &Config, mode: Mode, shared: &Shared, until: Option<Instant>) -> Vec<Sample> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(1)
        .build()
        .expect("http client");
    let mut out = Vec::new();
    let mut done = 0u64;
    loop {
        match (until, cfg.count) {
            (Some(until), _) if Instant::now() >= until => break,
            (None, Some(n)) if done >= n => break,
            _ => {}
        }
        done += 1;
        let i = shared.next_user.fetch_add(1, Ordering::Relaxed) % cfg.users.len();
        let (user, pass) = &cfg.users[i];
        let t = Instant::now();
        let result = match mode {
            Mode::Flow => flow(&http, cfg, user, pass).await,
            _ => login(&http, cfg, user, pass)
                .await
                .map(|()| [Duration::ZERO; 5]),
        };
        match result {
            Ok(steps) => out.push(Sample {
                end: Instant::now(),
                total: t.elapsed(),
                steps,
            }),
            Err(f) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if let Some(i) = STEPS.iter().position(|s| *s == f.step) {
                    shared.per_step[i].fetch_add(1, Ordering::Relaxed);
                }
                let mut kept = shared.kept.lock().unwrap();
                if kept.len() < KEEP_ERRORS {
                    kept.push(format!("{} ({user}): {}", f.step, f.msg));
                }
            }
        }
    }
    out
}

/// `POST /auth/login` with JSON; 200 with an access token.
async fn login(
    http: &reqwest::Client,
    cfg: &Config,
    user: &str,
    pass: &str,
) -> Result<(), Failure> {
    let step = "auth_login";
    let resp = http
        .post(cfg.base.join("/auth/login").unwrap())
        .json(&serde_json::json!({"username": user, "password": pass}))
        .send()
        .await
        .map_err(|e| fail(step, e.to_string()))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| fail(step, e.to_string()))?;
    if status != StatusCode::OK {
        return Err(fail(step, format!("{status}: {}", snippet(&body))));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| fail(step, e.to_string()))?;
    if !v["access_token"].is_string() {
        return Err(fail(step, format!("no access_token: {}", snippet(&body))));
    }
    Ok(())
}

/// A browser's cookies for keymint (all of this flow's are `Path=/`).
#[derive(Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn store(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all(SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let mut attrs = v.split(';');
            let Some((name, value)) = attrs.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = attrs.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            self.0.retain(|(n, _)| n != name);
            if !expired && !value.is_empty() {
                self.0.push((name.to_string(), value.to_string()));
            }
        }
    }

    /// Whether it holds the cookie `name` (or its `__Host-` form, under https).
    fn has(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|(n, _)| n == name || n.strip_prefix("__Host-") == Some(name))
    }

    fn apply(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.0.is_empty() {
            return rb;
        }
        let header: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        rb.header(COOKIE, header.join("; "))
    }
}

fn random_b64(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    B64.encode(b)
}

fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(LOCATION)?
        .to_str()
        .ok()
        .map(str::to_string)
}

fn snippet(body: &str) -> String {
    body.chars()
        .take(200)
        .collect::<String>()
        .replace('\n', " ")
}

/// The value of the form's `<input ... name="NAME" value="...">`, unescaped.
fn hidden_input(html: &str, name: &str) -> Option<String> {
    let key = format!("name=\"{name}\" value=\"");
    let from = html.find(&key)? + key.len();
    let len = html[from..].find('"')?;
    Some(
        html[from..from + len]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Send, store the cookies, and require `want`; the response and its body.
async fn exchange(
    step: &'static str,
    jar: &mut Jar,
    rb: reqwest::RequestBuilder,
    want: StatusCode,
) -> Result<(Option<String>, String), Failure> {
    let resp = jar
        .apply(rb)
        .send()
        .await
        .map_err(|e| fail(step, e.to_string()))?;
    jar.store(&resp);
    let status = resp.status();
    let loc = location(&resp);
    let body = resp.text().await.map_err(|e| fail(step, e.to_string()))?;
    if status != want {
        return Err(fail(
            step,
            format!(
                "{status} (wanted {want}), Location {loc:?}: {}",
                snippet(&body)
            ),
        ));
    }
    Ok((loc, body))
}

/// One whole sign-in, as a new browser and its relying party: the time of each step.
async fn flow(
    http: &reqwest::Client,
    cfg: &Config,
    user: &str,
    pass: &str,
) -> Result<[Duration; 5], Failure> {
    let mut steps = [Duration::ZERO; 5];
    let mut jar = Jar::default();
    let state = random_b64(16);
    let nonce = random_b64(16);
    let verifier = random_b64(32);
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));

    // 1. The relying party sends the browser to /oauth/authorize: no session, so to /login.
    let t = Instant::now();
    let mut authorize = cfg.base.join("/oauth/authorize").unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &cfg.redirect_uri)
        .append_pair("scope", "openid profile")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let (loc, _) = exchange(STEPS[0], &mut jar, http.get(authorize), StatusCode::FOUND).await?;
    let loc = loc
        .filter(|l| l.starts_with("/login?"))
        .ok_or_else(|| fail(STEPS[0], "no Location to /login"))?;
    steps[0] = t.elapsed();

    // 2. The login form: its nonce cookie and hidden fields.
    let t = Instant::now();
    let form_url = cfg
        .base
        .join(&loc)
        .map_err(|e| fail(STEPS[1], e.to_string()))?;
    let (_, html) = exchange(STEPS[1], &mut jar, http.get(form_url), StatusCode::OK).await?;
    let csrf = hidden_input(&html, "csrf").ok_or_else(|| fail(STEPS[1], "no csrf field"))?;
    let return_to = hidden_input(&html, "return_to")
        .filter(|r| r.starts_with("/oauth/authorize?"))
        .ok_or_else(|| fail(STEPS[1], "no return_to field back to /oauth/authorize"))?;
    if !jar.has("km_login") {
        return Err(fail(STEPS[1], "no km_login cookie"));
    }
    steps[1] = t.elapsed();

    // 3. Submit it (argon2 on the server): 303 back to return_to with the SSO cookie.
    let t = Instant::now();
    let post = http.post(cfg.base.join("/login").unwrap()).form(&[
        ("username", user),
        ("password", pass),
        ("csrf", csrf.as_str()),
        ("return_to", return_to.as_str()),
    ]);
    let (loc, _) = exchange(STEPS[2], &mut jar, post, StatusCode::SEE_OTHER).await?;
    if loc.as_deref() != Some(return_to.as_str()) {
        return Err(fail(STEPS[2], format!("Location {loc:?}, not return_to")));
    }
    if !jar.has("km_sso") {
        return Err(fail(STEPS[2], "no km_sso cookie"));
    }
    steps[2] = t.elapsed();

    // 4. Back at /oauth/authorize with the session: to the redirect URI with a code.
    let t = Instant::now();
    let back = cfg
        .base
        .join(&return_to)
        .map_err(|e| fail(STEPS[3], e.to_string()))?;
    let (loc, _) = exchange(STEPS[3], &mut jar, http.get(back), StatusCode::FOUND).await?;
    let loc = loc.ok_or_else(|| fail(STEPS[3], "no Location"))?;
    let cb = Url::parse(&loc).map_err(|e| fail(STEPS[3], format!("{e}: {loc}")))?;
    if !loc.starts_with(&format!("{}?", cfg.redirect_uri)) {
        return Err(fail(STEPS[3], format!("not the redirect URI: {loc}")));
    }
    let param = |k: &str| {
        cb.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
    };
    let code = param("code").ok_or_else(|| fail(STEPS[3], format!("no code: {loc}")))?;
    if param("state").as_deref() != Some(state.as_str())
        || param("iss").as_deref() != Some(cfg.issuer.as_str())
    {
        return Err(fail(STEPS[3], format!("wrong state or iss: {loc}")));
    }
    steps[3] = t.elapsed();

    // 5. The relying party redeems the code (client secret, PKCE verifier).
    let t = Instant::now();
    let token = http
        .post(cfg.base.join("/oauth/token").unwrap())
        .basic_auth(&cfg.client_id, Some(&cfg.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", cfg.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ]);
    let (_, body) = exchange(STEPS[4], &mut Jar::default(), token, StatusCode::OK).await?;
    let v: Value = serde_json::from_str(&body).map_err(|e| fail(STEPS[4], e.to_string()))?;
    for k in ["access_token", "id_token", "refresh_token"] {
        if !v[k].is_string() {
            return Err(fail(STEPS[4], format!("no {k}: {}", snippet(&body))));
        }
    }
    let claims = v["id_token"]
        .as_str()
        .and_then(|t| t.split('.').nth(1))
        .and_then(|p| B64.decode(p).ok())
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
        .ok_or_else(|| fail(STEPS[4], "the ID token is not a JWT"))?;
    if claims["nonce"].as_str() != Some(nonce.as_str()) {
        return Err(fail(STEPS[4], "the ID token's nonce is not the request's"));
    }
    steps[4] = t.elapsed();
    Ok(steps)
}
