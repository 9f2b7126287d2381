//! keymint's own HTML: the hosted login page, the consent page, sign-out pages and errors.
//! Server-rendered, usable without script (there is none), no third-party assets, labelled
//! fields, one stylesheet served from the binary, and a strict Content-Security-Policy.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The pages' policy: nothing but our stylesheet. `form-action` is left out on purpose:
/// browsers apply it to the redirects after a form post, and the login and consent forms end
/// at the relying party's redirect URI, on another origin.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet of every page (`/assets/keymint.css`).
pub const STYLESHEET: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f4f5f7;color:#1d1f23;margin:0}\
main{max-width:24rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 3px #0002}\
h1{font-size:1.4rem;margin:0 0 1rem}label{display:block;margin:1rem 0 .25rem;font-weight:600}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #888;border-radius:4px}\
button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem;border:0;border-radius:4px;background:#1f5fbf;color:#fff;cursor:pointer}\
button.secondary{background:#6b7280;margin-left:.5rem}.error{color:#a11;background:#fdecec;padding:.6rem;border-radius:4px}\
ul{padding-left:1.2rem}:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}";

/// HTML-escape text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page with `status`.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{} · keymint</title><link rel=\"stylesheet\" href=\"/assets/keymint.css\"></head>\
<body><main>{body}</main></body></html>\n",
        esc(title)
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The stylesheet response.
pub fn stylesheet() -> Response {
    let mut resp = STYLESHEET.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    resp
}

/// What the login form shows.
pub struct LoginForm<'a> {
    pub csrf: &'a str,
    pub return_to: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

/// The hosted sign-in form.
pub fn login(status: StatusCode, f: &LoginForm<'_>) -> Response {
    let error = f.error.map_or(String::new(), |e| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"error\">{}</p>",
            esc(e)
        )
    });
    let described = if f.error.is_some() {
        " aria-describedby=\"error\""
    } else {
        ""
    };
    let autofocus = if f.username.is_empty() {
        "username"
    } else {
        "password"
    };
    let focus = |field: &str| if field == autofocus { " autofocus" } else { "" };
    let body = format!(
        "<h1>Sign in</h1>{error}\
<form method=\"post\" action=\"/login\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
<label for=\"username\">Username</label>\
<input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"username\" \
autocapitalize=\"none\" spellcheck=\"false\" maxlength=\"64\" required{described}{fu}>\
<label for=\"password\">Password</label>\
<input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required{described}{fp}>\
<button type=\"submit\">Sign in</button></form>",
        csrf = esc(f.csrf),
        return_to = esc(f.return_to),
        username = esc(f.username),
        fu = focus("username"),
        fp = focus("password"),
    );
    page(status, "Sign in", &body)
}

/// A refusal that must not redirect (unknown client, unregistered redirect URI, …).
pub fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p>",
        esc(title),
        esc(message)
    );
    page(status, title, &body)
}

/// The consent page: allow or deny `client` the `scopes`.
pub fn consent(client: &str, scopes: &[String], request: &str, csrf: &str) -> Response {
    let items: String = scopes
        .iter()
        .map(|s| format!("<li>{}</li>", esc(&describe_scope(s))))
        .collect();
    let body = format!(
        "<h1>Allow {client}?</h1><p><strong>{client}</strong> asks to:</p><ul>{items}</ul>\
<form method=\"post\" action=\"/oauth/consent\">\
<input type=\"hidden\" name=\"request\" value=\"{request}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button></form>",
        client = esc(client),
        request = esc(request),
        csrf = esc(csrf),
    );
    page(StatusCode::OK, "Allow access", &body)
}

fn describe_scope(s: &str) -> String {
    match s {
        "openid" => "know who you are (your user id)".into(),
        "profile" => "see your username and name".into(),
        "email" => "see your email address".into(),
        other => format!("use the scope “{other}”"),
    }
}

/// After RP-initiated logout without a redirect.
pub fn signed_out() -> Response {
    page(
        StatusCode::OK,
        "Signed out",
        "<h1>Signed out</h1><p>You are signed out of keymint.</p>",
    )
}

/// Confirm a logout that came without an `id_token_hint` (so a third-party page cannot sign
/// the user out by linking here).
pub fn confirm_logout(request: &str, csrf: &str) -> Response {
    let body = format!(
        "<h1>Sign out?</h1><p>An application asks to sign you out of keymint.</p>\
<form method=\"post\" action=\"/oauth/logout\">\
<input type=\"hidden\" name=\"request\" value=\"{}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\">Sign out</button></form>",
        esc(request),
        esc(csrf)
    );
    page(StatusCode::OK, "Sign out", &body)
}

/// `/`: who is signed in.
pub fn home(username: Option<&str>) -> Response {
    let body = match username {
        Some(u) => format!(
            "<h1>keymint</h1><p>Signed in as <strong>{}</strong>.</p>",
            esc(u)
        ),
        None => "<h1>keymint</h1><p>You are not signed in. <a href=\"/login\">Sign in</a></p>"
            .to_string(),
    };
    page(StatusCode::OK, "keymint", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_attribute_breakouts() {
        assert_eq!(
            esc("\"><script>alert('x')</script>&"),
            "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"
        );
    }
}
