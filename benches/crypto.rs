//! Micro-benchmarks of the token hot paths, printed beside the machine's own RSA limit.
//!
//! Run: `cargo bench --bench crypto`. Compares signing with a key pair parsed once (what
//! keymint does) against `jsonwebtoken::encode`, which re-parses the private key per call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keymint::keys::Signer;
use keymint::tokens::AccessClaims;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: "6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f".into(),
        aud: "http://127.0.0.1:8080".into(),
        exp: 4_000_000_000,
        iat: 1_700_000_000,
        nbf: 1_700_000_000,
        jti: "0123456789abcdef0123456789abcdef".into(),
        token_type: "access".into(),
        scope: "profile".into(),
        roles: vec!["admin".into()],
        sid: Some("fedcba9876543210fedcba9876543210".into()),
        client_id: None,
    }
}

fn openssl_speed() {
    match std::process::Command::new("openssl")
        .args(["speed", "-seconds", "2", "rsa2048"])
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(line) = text.lines().find(|l| l.starts_with("rsa 2048")) {
                println!("machine limit (openssl speed rsa2048, 1 core): {line}");
                println!(
                    "                                   columns: sign s, verify s, sign/s, verify/s"
                );
            }
        }
        Err(e) => println!("openssl speed unavailable: {e}"),
    }
}

/// A signer whose key was generated in a fresh SoftHSM2 token (a temporary token directory),
/// through keymint's own pkcs11 backend; `None` when SoftHSM2 is not installed.
fn softhsm_signer() -> Option<Signer> {
    let module = std::path::PathBuf::from("/usr/lib/softhsm/libsofthsm2.so");
    if !module.exists() {
        println!("SoftHSM2 not installed: no pkcs11 figures (apt install softhsm2)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    let text = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
        dir.join("tokens").display()
    );
    std::fs::write(&conf, text).unwrap();
    // SAFETY: set once, before the module is loaded; criterion runs benchmarks on this thread.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    let made = std::process::Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", "bench"])
        .args(["--so-pin", "so-bench", "--pin", "pin-bench"])
        .output()
        .unwrap();
    assert!(made.status.success(), "softhsm2-util: {made:?}");
    let hsm = std::sync::Arc::new(
        keymint::keys::hsm::Hsm::open(&keymint::keys::hsm::Pkcs11Config {
            module,
            token: "bench".into(),
            pin: zeroize::Zeroizing::new("pin-bench".into()),
        })
        .unwrap(),
    );
    let key = hsm.generate(keymint::keys::Purpose::Access, 2048).unwrap();
    Some(Signer::pkcs11(
        key.kid.clone(),
        hsm.signer(&key.kid).unwrap(),
    ))
}

fn bench(c: &mut Criterion) {
    openssl_speed();
    let m = keymint::keys::material::generate(2048).unwrap();
    let signer = Signer::from_pkcs8(m.kid.clone(), &m.pkcs8_der).unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let claims = claims();
    let msg = b"eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9";

    c.bench_function("rs256_sign/keymint_parsed_once", |b| {
        b.iter(|| signer.sign(&rng, black_box(msg)).unwrap())
    });
    // The same signature through the pkcs11 backend, in the same run (SoftHSM2 when present).
    if let Some(hsm_signer) = softhsm_signer() {
        c.bench_function("rs256_sign/pkcs11_softhsm2", |b| {
            b.iter(|| hsm_signer.sign(&rng, black_box(msg)).unwrap())
        });
    }

    let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_der(&m.pkcs8_der)
        .unwrap()
        .to_pkcs1_der()
        .unwrap();
    let ek = EncodingKey::from_rsa_der(pkcs1.as_bytes());
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(m.kid.clone());
    c.bench_function("rs256_sign/jsonwebtoken_encode", |b| {
        b.iter(|| jsonwebtoken::encode(black_box(&header), &claims, &ek).unwrap())
    });

    let token = jsonwebtoken::encode(&header, &claims, &ek).unwrap();
    let dk = DecodingKey::from_rsa_components(&m.n, &m.e).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.set_audience(&["http://127.0.0.1:8080"]);
    c.bench_function("rs256_verify/jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<AccessClaims>(black_box(&token), &dk, &v).unwrap())
    });

    // keymint's full access-token verification (header, kid lookup, signature, claims, times).
    let m2 = keymint::keys::material::generate(2048).unwrap();
    let ring = keymint::keys::KeyRing::from_keys(&[
        (
            &m,
            keymint::keys::Purpose::Access,
            keymint::keys::KeyState::Active,
        ),
        (
            &m2,
            keymint::keys::Purpose::Refresh,
            keymint::keys::KeyState::Active,
        ),
    ])
    .unwrap();
    let tokens =
        keymint::tokens::Tokens::new(claims.iss.clone(), claims.aud.clone(), 900, 86400, 30);
    let at = tokens
        .sign(&ring, keymint::keys::Purpose::Access, &claims)
        .unwrap();
    c.bench_function("access_token/keymint_sign", |b| {
        b.iter(|| {
            tokens
                .sign(&ring, keymint::keys::Purpose::Access, black_box(&claims))
                .unwrap()
        })
    });
    c.bench_function("access_token/keymint_verify", |b| {
        b.iter(|| {
            tokens
                .verify_access(&ring, black_box(&at), Some(&claims.aud), 1_800_000_000)
                .unwrap()
        })
    });

    // JWKS rendering: what the key manager does once per key change (serialize + ETag).
    let jwks = keymint::keys::Jwks {
        keys: (0..3)
            .map(|i| keymint::keys::Jwk {
                kty: "RSA".into(),
                use_: "sig".into(),
                alg: "RS256".into(),
                kid: format!("{}{i}", m.kid),
                n: m.n.clone(),
                e: m.e.clone(),
            })
            .collect(),
    };
    c.bench_function("jwks/render_3_keys", |b| {
        b.iter(|| {
            use sha2::Digest;
            let body = serde_json::to_vec(black_box(&jwks)).unwrap();
            let etag = sha2::Sha256::digest(&body);
            (body, etag)
        })
    });

    // argon2id with keymint's parameters (m=19 MiB, t=2, p=1).
    let mut g = c.benchmark_group("argon2id");
    g.sample_size(20);
    let hash = keymint::users::hash_blocking(b"correct horse battery").unwrap();
    g.bench_function("hash", |b| {
        b.iter(|| keymint::users::hash_blocking(black_box(b"correct horse battery")).unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| keymint::users::verify_blocking(&hash, black_box(b"correct horse battery")))
    });
    g.finish();
}

/// RSA key generation per size (seconds at 4096 bits, and highly variable: prime search).
fn keygen(c: &mut Criterion) {
    let mut g = c.benchmark_group("rsa_keygen");
    g.sample_size(10)
        .measurement_time(std::time::Duration::from_secs(20));
    for bits in [2048usize, 3072, 4096] {
        g.bench_function(bits.to_string(), |b| {
            b.iter(|| keymint::keys::material::generate(black_box(bits)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench, keygen);
criterion_main!(benches);
