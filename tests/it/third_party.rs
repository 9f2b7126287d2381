//! A verifier keymint did not write: PyJWT's `PyJWKClient` fetches the JWKS over HTTP.

use crate::harness::{Backend, Server, Site, pyjwt_verify as verify};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_access_tokens_and_refuses_refresh_tokens() {
    let site = Site::new(Backend::Sqlite).await;
    let s = Server::start(&site, &[]).await;
    let u = s.user("victor", "victor-password", &[]).await;
    let t = s.login("victor", "victor-password").await;
    let url = s.url("/.well-known/jwks.json");

    let (u2, a) = (url.clone(), t.access_token.clone());
    let (code, claims) = tokio::task::spawn_blocking(move || verify(&u2, &a))
        .await
        .unwrap();
    assert_eq!(code, 0, "{claims}");
    assert_eq!(claims["sub"], u.id);
    assert_eq!(claims["type"], "access");

    let r = t.refresh_token.clone();
    let (code, err) = tokio::task::spawn_blocking(move || verify(&url, &r))
        .await
        .unwrap();
    assert_eq!(
        code, 3,
        "a refresh token must not verify through the JWKS: {err}"
    );
    assert_eq!(err["error"], "PyJWKClientError", "{err}");
    s.stop().await;
}
