//! Browser sign-in (SPEC section 7) through real HTTP, with a scripted user agent that keeps
//! cookies and never follows redirects on its own: the OpenID Connect code flow and the
//! conformance-style negative cases (`code_flow`), cookie mode (`cookie_mode`), and the
//! hosted login page's throttling and CSRF bounds (`hosted_login`). Third-party relying
//! parties and Chromium run in `oidc_rp`.

mod code_flow;
mod cookie_mode;
mod hosted_login;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::Server;

/// A user agent: a cookie jar (name → value, as Set-Cookie left it), no automatic redirects.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    jar: Mutex<BTreeMap<String, String>>,
    /// Every Set-Cookie header seen, verbatim, for attribute checks.
    pub set_cookies: Mutex<Vec<String>>,
}

impl Browser {
    pub fn new(s: &Server) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: s.base.clone(),
            jar: Mutex::default(),
            set_cookies: Mutex::default(),
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    fn cookie_header(&self) -> String {
        let jar = self.jar.lock().unwrap();
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&self, r: &Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap().to_string();
            let (pair, attrs) = v.split_once(';').unwrap_or((&v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let mut jar = self.jar.lock().unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
            self.set_cookies.lock().unwrap().push(v.clone());
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_string());
    }

    /// The last Set-Cookie for `name`.
    pub fn set_cookie_line(&self, name: &str) -> String {
        let all = self.set_cookies.lock().unwrap();
        all.iter()
            .rev()
            .find(|l| l.starts_with(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {all:?}"))
            .clone()
    }

    pub async fn get(&self, path: &str) -> Response {
        let r = self
            .http
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&r);
        r
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let r = self
            .http
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap();
        self.keep(&r);
        r
    }

    /// POST JSON (or nothing) with extra headers, cookies attached.
    pub async fn post(
        &self,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut rb = self
            .http
            .post(self.url(path))
            .header("cookie", self.cookie_header());
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        self.keep(&r);
        r
    }

    /// Fill the hosted login form behind `login_url` and submit it.
    pub async fn submit_login(&self, login_url: &str, user: &str, password: &str) -> Response {
        let page = self.get(login_url).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let csrf = hidden(&html, "csrf");
        let return_to = hidden(&html, "return_to");
        self.post_form(
            "/login",
            &[
                ("username", user),
                ("password", password),
                ("csrf", &csrf),
                ("return_to", &return_to),
            ],
        )
        .await
    }

    /// Run `authorize` (a URL) to its end: through the hosted login if asked, back to the
    /// authorization endpoint, and return its final answer (a redirect to the client, or a page).
    pub async fn authorize(&self, authorize: &str, user: &str, password: &str) -> Response {
        let r = self.get(authorize).await;
        if r.status() != 302 || !location(&r).starts_with("/login") {
            return r;
        }
        let done = self.submit_login(&location(&r), user, password).await;
        assert_eq!(
            done.status(),
            303,
            "login failed: {}",
            done.text().await.unwrap()
        );
        self.get(&location(&done)).await
    }
}

/// The `Location` header.
pub fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location on {}", r.status()))
        .to_str()
        .unwrap()
        .to_string()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> HashMap<String, String> {
    let full = if url.starts_with('/') {
        format!("http://x{url}")
    } else {
        url.to_string()
    };
    url::Url::parse(&full)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// The value of the hidden input `name` in `html`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub const REDIRECT: &str = "http://127.0.0.1:9/cb";
pub const AFTER_LOGOUT: &str = "http://127.0.0.1:9/bye";

/// Register a client through the admin API; returns (client_id, secret or None).
pub async fn client(s: &Server, admin: &str, extra: Value) -> (String, Option<String>) {
    let mut body = json!({
        "name": "web app",
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["email"],
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": [AFTER_LOGOUT],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = s.post_json("/admin/clients", &body, Some(admin)).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().map(str::to_string),
    )
}

/// An authorization URL with every usual parameter; `over` replaces or (value "") removes.
pub fn authorize_url(client_id: &str, challenge: &str, over: &[(&str, &str)]) -> String {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in over {
        params.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            params.push((k.to_string(), v.to_string()));
        }
    }
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/oauth/authorize?{q}")
}
