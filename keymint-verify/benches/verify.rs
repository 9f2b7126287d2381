//! Verification through `keymint-verify` with its caches warm, against a bare
//! `jsonwebtoken::decode` with the key already in hand, in the same run (target: ≥ 0.95×
//! the bare rate). `cargo bench -p keymint-verify`.

use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keymint_verify::{Claims, Verifier};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;

const ISSUER: &str = "http://keymint.bench";

fn key_pem() -> String {
    let all = include_str!("../../tests/fixtures/rsa2048-test-keys.pem");
    let end = "-----END PRIVATE KEY-----";
    let first = all.split(end).next().unwrap_or_default();
    format!("{first}{end}\n")
}

fn token(pem: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "u_1", "aud": ISSUER, "exp": now + 3600, "iat": now,
        "nbf": now, "jti": "0f1e2d3c", "type": "access", "scope": "profile", "roles": [],
        "sid": "f_1",
    });
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("bench".into());
    let der = rsa::RsaPrivateKey::from_pkcs8_pem(pem)
        .unwrap()
        .to_pkcs1_der()
        .unwrap();
    let key = EncodingKey::from_rsa_der(der.as_bytes());
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A JWKS endpoint on a local port, as an issuer would serve it.
fn serve_jwks(rt: &tokio::runtime::Runtime, pem: &str) -> String {
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(pem).unwrap();
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = serde_json::json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "bench",
        "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be()),
    }]});
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });
    url
}

/// Poll a future once, as `.await` does; a cache hit is ready at once.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a cache hit must not wait"),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let pem = key_pem();
    let token = token(&pem);
    let url = serve_jwks(&rt, &pem);
    let verifier = rt
        .block_on(Verifier::builder(ISSUER).jwks_url(url).build())
        .unwrap();
    assert!(ready(verifier.verify(&token)).is_ok());

    let public = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
        .unwrap()
        .to_public_key();
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let key = DecodingKey::from_rsa_components(
        &b64(public.n().to_bytes_be()),
        &b64(public.e().to_bytes_be()),
    )
    .unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[ISSUER]);

    let mut g = c.benchmark_group("verify");
    g.bench_function("jsonwebtoken_decode_key_in_hand", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&token), &key, &validation).unwrap())
    });
    g.bench_function("keymint_verify_cache_hit", |b| {
        b.iter(|| ready(verifier.verify(black_box(&token))).unwrap())
    });
    g.finish();

    // The same comparison interleaved, so that the machine's drift (a shared VM's neighbours,
    // frequency changes) falls on both sides alike: the median of many short rounds' rate
    // ratios, the order alternating.
    let round = |f: &dyn Fn()| {
        let t = std::time::Instant::now();
        for _ in 0..200 {
            f();
        }
        t.elapsed().as_secs_f64()
    };
    let bare = || {
        black_box(jsonwebtoken::decode::<Claims>(black_box(&token), &key, &validation).unwrap());
    };
    let ours = || {
        black_box(ready(verifier.verify(black_box(&token))).unwrap());
    };
    let mut ratios: Vec<f64> = (0..401)
        .map(|i| {
            if i % 2 == 0 {
                let b = round(&bare);
                b / round(&ours)
            } else {
                let o = round(&ours);
                round(&bare) / o
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "interleaved: keymint-verify verifies at {:.3}x the bare jsonwebtoken::decode rate (median of 401 alternating rounds of 200; quartiles {:.3}..{:.3}; target >= 0.95)",
        ratios[200], ratios[100], ratios[300]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
