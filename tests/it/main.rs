//! keymint's one integration-test binary. Every test starts the real server on a TCP port
//! over a fresh database (SQLite file, and Postgres when `KEYMINT_TEST_POSTGRES_URL` is set)
//! and talks HTTP to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod abuse;
mod admin;
mod architecture;
mod attacks;
mod cli;
mod doors;
mod faults;
mod feed;
mod flows;
mod hsm;
mod keys;
mod oauth;
mod oidc;
mod oidc_rp;
mod openapi;
mod ops;
mod outage;
mod recipes;
mod revocation;
mod security;
mod third_party;
mod tls;
mod verify;
