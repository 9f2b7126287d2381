//! The recipes of `docs/verifying.md`, run as written: each third-party verifier (PyJWT,
//! node `jose`, `express-jwt` + `jwks-rsa`) stays up across key rotations and a key
//! revocation, accepts every valid access token, and refuses refresh tokens and forgeries.
//! The document embeds each recipe file verbatim, so it cannot drift from what runs here.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, Server, Site, admin_post, forge, kid, python, root, tamper};

/// keymint's JWKS `max-age` here, and the verifiers' cache lifetime: no longer, as the
/// document asks. Short, so that a revoked key is seen to leave the caches.
const CACHE_SECS: u64 = 2;
/// The verifiers' refetch cooldown on an unknown kid (30 s in the recipes by default).
const COOLDOWN: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt() {
    survives_rotation_and_revocation("pyjwt_verifier.py", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jose() {
    let modules = node_modules("recipes::jose");
    if modules.is_some() {
        survives_rotation_and_revocation("jose_verifier.mjs", modules).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn express_jwt() {
    let modules = node_modules("recipes::express_jwt");
    if modules.is_some() {
        survives_rotation_and_revocation("express_verifier.mjs", modules).await;
    }
}

/// `recipe`, a file of `docs/verifying/`, run by node when `node_modules` is given.
async fn survives_rotation_and_revocation(recipe: &str, node_modules: Option<PathBuf>) {
    let site = Site::new(Backend::Sqlite).await;
    let max_age = format!("{CACHE_SECS}s");
    let s = Server::start(&site, &[("KEYMINT_JWKS_MAX_AGE", &max_age)]).await;
    s.user("admin", "admin-password", &["admin"]).await;
    let alice = s.user("alice", "alice-password", &[]).await;
    let admin = s.login("admin", "admin-password").await;
    let mut v = Verifier::start(recipe, &s, node_modules).await;

    let first = s.login("alice", "alice-password").await;
    let answer = v
        .check(&first.access_token)
        .await
        .unwrap_or_else(|e| panic!("{recipe} refused a fresh access token: {e}"));
    assert_eq!(answer["sub"], alice.id, "{recipe}: {answer}");

    // The first rotation promotes a key the verifier fetched as `next`; the later ones promote
    // keys it has never seen, which it must fetch on the unknown kid. Every token so far
    // stays valid: retired keys remain published.
    let mut valid = vec![first.access_token];
    let mut refresh = first.refresh_token;
    for round in 1..=3 {
        admin_post(&s, &admin.access_token, "/admin/keys/rotate").await;
        if !recipe.starts_with("express") {
            // keymint rotates weekly, far apart from any cooldown; compressed here.
            tokio::time::sleep(COOLDOWN + Duration::from_millis(100)).await;
        }
        let t = s.login("alice", "alice-password").await;
        assert_ne!(kid(&t.access_token), kid(&valid[valid.len() - 1]));
        valid.push(t.access_token);
        refresh = t.refresh_token;
        for (i, token) in valid.iter().enumerate() {
            if let Err(e) = v.check(token).await {
                panic!("{recipe} refused valid token {i} after rotation {round}: {e}");
            }
        }
    }

    let newest = valid[valid.len() - 1].clone();
    let edit = |part, key, value| forge(&newest, part, key, value);
    let control = edit(0, "typ", json!("at+jwt"));
    v.check(&control)
        .await
        .unwrap_or_else(|e| panic!("{recipe}: the forging itself is sound: {e}"));
    let refusals = [
        ("refresh token", refresh),
        ("tampered signature", tamper(&newest)),
        ("typ JWT", edit(0, "typ", json!("JWT"))),
        ("wrong audience", edit(1, "aud", json!("http://x.test"))),
        ("wrong issuer", edit(1, "iss", json!("http://x.test"))),
        ("expired", edit(1, "exp", json!(now() - 120))),
        ("alg none", {
            let forged = edit(0, "alg", json!("none"));
            format!("{}.", forged.rsplit_once('.').unwrap().0)
        }),
    ];
    for (what, token) in &refusals {
        if let Ok(answer) = v.check(token).await {
            panic!("{recipe} accepted a {what}: {answer}");
        }
    }
    v.check(&newest)
        .await
        .unwrap_or_else(|e| panic!("{recipe} refused a valid token after the refusals: {e}"));

    // A revoked key leaves the JWKS at once; a verifier may trust it until its cache
    // expires, and no longer.
    let victim = valid[0].clone();
    let revoke = format!("/admin/keys/{}/revoke", kid(&victim));
    admin_post(&s, &admin.access_token, &revoke).await;
    let deadline = Instant::now() + Duration::from_secs(CACHE_SECS) + Duration::from_secs(2);
    while v.check(&victim).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "{recipe} still trusts a revoked key after its cache lifetime"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (i, token) in valid.iter().enumerate().skip(1) {
        if let Err(e) = v.check(token).await {
            panic!("{recipe} refused valid token {i} after another key's revocation: {e}");
        }
    }
    drop(v);
    s.stop().await;
}

#[test]
fn the_document_embeds_every_recipe_and_its_versions() {
    let doc = std::fs::read_to_string(root().join("docs/verifying.md")).unwrap();
    let mut recipes = 0;
    for entry in std::fs::read_dir(root().join("docs/verifying")).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let lang = match path.extension().and_then(|e| e.to_str()) {
            Some("py") => "python",
            Some("mjs") => "js",
            _ => panic!("{}: no recipe language known for it", path.display()),
        };
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            doc.contains(&format!("```{lang}\n{text}```\n")),
            "docs/verifying.md must embed {} verbatim in a ```{lang} block",
            path.display()
        );
        recipes += 1;
    }
    assert_eq!(recipes, 3, "one file per recipe");
    // The versions the recipes run with here, as the document names them.
    for (name, version) in pinned_node_packages(true) {
        let pin = format!("{name}@{version}");
        assert!(doc.contains(&pin), "docs/verifying.md does not name {pin}");
    }
    let reqs = std::fs::read_to_string(root().join("tests/py/requirements.txt")).unwrap();
    let pyjwt = reqs.lines().find(|l| l.starts_with("PyJWT")).unwrap();
    assert!(
        doc.contains(pyjwt),
        "docs/verifying.md does not name {pyjwt}"
    );
}

/// A recipe running as a child process: a line verifier (token in, JSON line out) or the
/// express app (`GET /hello`).
struct Verifier {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    hello: Option<String>,
    http: reqwest::Client,
    /// Where a node recipe runs from (see `start`).
    _dir: Option<tempfile::TempDir>,
}

impl Verifier {
    async fn start(recipe: &str, s: &Server, node_modules: Option<PathBuf>) -> Verifier {
        let file = root().join("docs/verifying").join(recipe);
        let (mut cmd, dir) = match node_modules {
            None => {
                let py = tokio::task::spawn_blocking(python).await.unwrap();
                let mut cmd = Command::new(py);
                cmd.arg(&file);
                (cmd, None)
            }
            Some(modules) => {
                // Node resolves packages from the script's own directory upwards, so run a
                // copy beside the installed modules.
                let dir = tempfile::tempdir().unwrap();
                let script = dir.path().join(recipe);
                std::fs::copy(&file, &script).unwrap();
                std::os::unix::fs::symlink(modules, dir.path().join("node_modules")).unwrap();
                let mut cmd = Command::new("node");
                cmd.arg(script);
                (cmd, Some(dir))
            }
        };
        let cache = CACHE_SECS.to_string();
        let cooldown = COOLDOWN.as_secs_f64().to_string();
        cmd.env_remove("KEYMINT_AUDIENCE")
            .envs([
                ("KEYMINT_ISSUER", "http://keymint.test"),
                ("KEYMINT_JWKS_URL", &s.url("/.well-known/jwks.json")),
                ("JWKS_CACHE_SECONDS", &cache),
                ("JWKS_COOLDOWN_SECONDS", &cooldown),
                // Short cache entries refetch often here; the default 10 suits real periods.
                ("JWKS_REQUESTS_PER_MINUTE", "120"),
                ("BIND", "127.0.0.1:0"),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let mut stdout = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok);
        // Lines go to the test until it hangs up.
        std::thread::spawn(move || stdout.try_for_each(|line| tx.send(line)));
        let mut v = Verifier {
            stdin: child.stdin.take(),
            child,
            lines,
            hello: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            _dir: dir,
        };
        if recipe.starts_with("express") {
            let line = v.next_line().await;
            let base = line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("express recipe printed {line:?}"));
            v.hello = Some(format!("{base}/hello"));
        }
        v
    }

    /// `Ok(answer)` when the recipe accepts `token`, `Err(why)` when it refuses it.
    async fn check(&mut self, token: &str) -> Result<Value, String> {
        if let Some(url) = &self.hello {
            let r = self.http.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status();
            let challenge = r.headers().get("www-authenticate").cloned();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            return match status {
                StatusCode::OK => Ok(body),
                StatusCode::UNAUTHORIZED => {
                    let challenge = challenge.expect("a 401 carries WWW-Authenticate");
                    let challenge = challenge.to_str().unwrap();
                    assert!(
                        challenge.starts_with("Bearer") && challenge.contains("invalid_token"),
                        "challenge {challenge:?}"
                    );
                    Err(body.to_string())
                }
                other => panic!("express recipe answered {other}: {body}"),
            };
        }
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{token}")
            .and_then(|_| stdin.flush())
            .unwrap();
        let line = self.next_line().await;
        let answer: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("recipe printed {line:?}: {e}"));
        match answer["ok"].as_bool() {
            Some(true) => Ok(answer),
            Some(false) => Err(answer["error"].to_string()),
            None => panic!("recipe printed {answer}"),
        }
    }

    async fn next_line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(10), self.lines.recv())
            .await
            .expect("the recipe answers within 10 s")
            .expect("the recipe exited (its stderr is above)")
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/node/node_modules` with the pinned packages, or `None` (the test skipped, loudly)
/// when node or a package is missing; with `KEYMINT_TEST_REQUIRE_NODE=1` that fails instead.
pub(crate) fn node_modules(test: &str) -> Option<PathBuf> {
    let modules = root().join("tests/node/node_modules");
    let Some(why) = node_missing(&modules) else {
        return Some(modules);
    };
    assert!(
        std::env::var("KEYMINT_TEST_REQUIRE_NODE").as_deref() != Ok("1"),
        "{test}: KEYMINT_TEST_REQUIRE_NODE=1 but {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// Why node or a package pinned in `tests/node/package.json` is missing, if it is.
pub(crate) fn node_missing(modules: &std::path::Path) -> Option<String> {
    let out = Command::new("node")
        .args(["-p", "process.versions.node"])
        .output();
    let Some(out) = out.ok().filter(|o| o.status.success()) else {
        return Some("node is not installed (apt install nodejs npm)".into());
    };
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    // jwks-rsa 4 needs node 20.19 or later.
    if parts < vec![20, 19] {
        return Some(format!("node {version} is older than 20.19"));
    }
    for (name, want) in pinned_node_packages(false) {
        let installed = std::fs::read_to_string(modules.join(&name).join("package.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok());
        if installed.is_none_or(|p| p["version"] != want.as_str()) {
            return Some(format!(
                "{name}@{want} is not installed in tests/node/node_modules (run: npm ci --prefix tests/node)"
            ));
        }
    }
    None
}

/// (name, version) of each package `tests/node/package.json` pins.
/// The packages pinned in `tests/node/package.json`: all, or (`recipes_only`) those the
/// recipes use (tests/node also pins the OpenID Connect client and browser driver of `oidc_rp`).
fn pinned_node_packages(recipes_only: bool) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("tests/node/package.json")).unwrap();
    let pkg: Value = serde_json::from_str(&text).unwrap();
    let deps = pkg["dependencies"].as_object().unwrap();
    deps.iter()
        .filter(|(name, _)| {
            !recipes_only || ["express", "express-jwt", "jose", "jwks-rsa"].contains(&name.as_str())
        })
        .map(|(name, v)| (name.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn now() -> i64 {
    keymint::clock::system_now()
}
