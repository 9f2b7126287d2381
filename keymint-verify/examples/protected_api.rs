//! A service that trusts keymint: `GET /hello` answers the caller's `sub` and `scope`.
//!
//! ```text
//! KEYMINT_ISSUER=http://127.0.0.1:8080 \
//! KEYMINT_CLIENT_ID=c_... KEYMINT_CLIENT_SECRET=... \
//!   cargo run -p keymint-verify --example protected_api
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3001/hello
//! ```
//!
//! - `BIND`: the address to listen on (default `127.0.0.1:3001`); the bound address is printed.
//! - `KEYMINT_ISSUER`: the issuer to trust (its JWKS is discovered).
//! - `KEYMINT_AUDIENCE`: the audience tokens must carry (default: the issuer).
//! - `KEYMINT_CLIENT_ID`, `KEYMINT_CLIENT_SECRET`: follow the revocation feed, so that a
//!   logout is refused here within about a second.
//!
//! A valid token gets 200 `{"sub": ..., "scope": ...}`; anything else 401 with a
//! `WWW-Authenticate: Bearer` challenge (with `error="invalid_token"` when a token was sent).

use axum::routing::get;
use axum::{Json, Router};
use keymint_verify::{Verified, Verifier};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let issuer = var("KEYMINT_ISSUER").ok_or("KEYMINT_ISSUER is required")?;
    let bind = var("BIND").unwrap_or_else(|| "127.0.0.1:3001".into());

    let mut builder = Verifier::builder(issuer);
    if let Some(aud) = var("KEYMINT_AUDIENCE") {
        builder = builder.audience(aud);
    }
    if let (Some(id), Some(secret)) = (var("KEYMINT_CLIENT_ID"), var("KEYMINT_CLIENT_SECRET")) {
        builder = builder.follow_revocations(id, secret);
    }
    let verifier = builder.build().await?;

    let app = Router::new()
        .route("/hello", get(hello))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn hello(Verified(claims): Verified) -> Json<Value> {
    Json(json!({"sub": claims.sub, "scope": claims.scope}))
}
