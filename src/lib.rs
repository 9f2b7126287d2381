//! keymint: an RS256 identity provider.
//!
//! Domain modules (`keys`, `tokens`, `revocation`, `sessions`, `users`) take `now` as a
//! parameter and know nothing of HTTP; `http` maps them onto axum; `state::App` wires them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod cleanup;
pub mod clients;
pub mod clock;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod logging;
pub mod login;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod oidc;
pub mod openapi;
pub mod pool;
pub mod ratelimit;
pub mod revocation;
pub mod server;
pub mod sessions;
pub mod state;
pub mod tokens;
pub mod users;

pub use http::{openapi as openapi_document, router as app};
pub use state::{App, AppState};
