//! Fuzz the token verification path: arbitrary bytes as a bearer token, and arbitrary claims
//! behind a well-formed header with a real kid (so parsing gets past the header).
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keymint::keys::material::{KeyMaterial, generate};
use keymint::keys::{KeyRing, KeyState, Purpose};
use keymint::tokens::Tokens;
use libfuzzer_sys::fuzz_target;

struct Fixture {
    ring: KeyRing,
    tokens: Tokens,
    access_kid: String,
    refresh_kid: String,
}

static FIX: LazyLock<Fixture> = LazyLock::new(|| {
    let a: KeyMaterial = generate(2048).expect("keygen");
    let r: KeyMaterial = generate(2048).expect("keygen");
    let ring = KeyRing::from_keys(&[(&a, Purpose::Access, KeyState::Active), (&r, Purpose::Refresh, KeyState::Active)])
        .expect("ring");
    let tokens = Tokens::new("http://k.test".into(), "http://k.test".into(), 900, 86400, 30);
    Fixture { ring, tokens, access_kid: a.kid.clone(), refresh_kid: r.kid.clone() }
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIX;
    let now = 1_800_000_000;
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = f.tokens.verify_access(&f.ring, token, Some("http://k.test"), now);
        let _ = f.tokens.verify_access(&f.ring, token, None, now);
        let _ = f.tokens.verify_refresh(&f.ring, token, now);
    }
    // Structured: a valid header, fuzzed claims and signature.
    if let Some((&mode, rest)) = data.split_first() {
        let (kid, typ) = if mode & 1 == 0 { (&f.access_kid, "at+jwt") } else { (&f.refresh_kid, "JWT") };
        let header = format!(r#"{{"alg":"RS256","typ":"{typ}","kid":"{kid}"}}"#);
        let split = rest.len() / 2;
        let token = format!("{}.{}.{}", B64.encode(header), B64.encode(&rest[..split]), B64.encode(&rest[split..]));
        let _ = f.tokens.verify_access(&f.ring, &token, Some("http://k.test"), now);
        let _ = f.tokens.verify_refresh(&f.ring, &token, now);
    }
});
