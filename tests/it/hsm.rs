//! Signing keys in a PKCS#11 token (SPEC section 10), on SoftHSM2: the private keys cannot
//! leave the token and nothing private is stored outside it, third parties verify its tokens,
//! cleanup destroys what can never sign again, a wrong module, token or PIN stops start-up,
//! and switching backends keeps every token valid. The key lifecycle itself runs on this
//! backend in `keys.rs` (the `pkcs11` variants).

use std::collections::HashMap;

use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use keymint::db::entities::signing_keys;
use keymint::keys::Purpose;
use sea_orm::EntityTrait;
use serde_json::Value;

use crate::harness::{Backend, Server, Site, kid, pkcs11_module, pyjwt_verify, site_db};

/// The attributes of every private key object in the site's token, by `CKA_ID` (the kid).
fn private_keys(site: &Site) -> HashMap<String, Vec<Attribute>> {
    let (label, pin) = site.pkcs11.clone().unwrap();
    let ctx = keymint::keys::hsm::module(&pkcs11_module().unwrap()).unwrap();
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == label)
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    // The server in this process may have logged in already: login belongs to the process.
    let _ = session.login(UserType::User, Some(&AuthPin::new(pin.into())));
    let mut out = HashMap::new();
    for h in session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
        .unwrap()
    {
        let attrs = session
            .get_attributes(
                h,
                &[
                    AttributeType::Id,
                    AttributeType::Label,
                    AttributeType::Token,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    AttributeType::Sign,
                    AttributeType::Decrypt,
                    AttributeType::PrivateExponent,
                ],
            )
            .unwrap();
        let id = attrs
            .iter()
            .find_map(|a| match a {
                Attribute::Id(v) => Some(String::from_utf8(v.clone()).unwrap()),
                _ => None,
            })
            .unwrap();
        out.insert(id, attrs);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_keys_stay_in_the_token_and_nothing_private_is_stored() {
    let Some(site) = Site::pkcs11(Backend::Sqlite, "hsm::private_keys_stay_in_the_token").await
    else {
        return;
    };
    let s = Server::start(&site, &[]).await;
    s.user("hana", "hana-password-1", &[]).await;
    let t = s.login("hana", "hana-password-1").await;

    // Every key in the database is a pkcs11 key, with no private part and no KEK.
    let db = site_db(&site).await;
    let rows = signing_keys::Entity::find().all(&db).await.unwrap();
    assert_eq!(rows.len(), 4, "an active and a next key per purpose");
    for r in &rows {
        assert_eq!(r.backend, "pkcs11");
        assert!(r.private_key.is_empty() && r.kek_id.is_empty(), "{}", r.kid);
    }

    // Read back from the token: one private key object per key, named by its kid, sensitive,
    // never extractable, sign-only; its private exponent cannot be read.
    let objects = private_keys(&site);
    assert_eq!(objects.len(), 4, "{:?}", objects.keys());
    for r in &rows {
        let attrs = &objects[&r.kid];
        let want_label = format!("keymint:{}:{}", r.purpose, r.kid).into_bytes();
        for a in attrs {
            match a {
                Attribute::Label(l) => assert_eq!(l, &want_label),
                Attribute::Token(v) | Attribute::Sensitive(v) | Attribute::Sign(v) => {
                    assert!(v, "{a:?} on {}", r.kid)
                }
                Attribute::NeverExtractable(v) => assert!(v, "{}", r.kid),
                Attribute::Extractable(v) | Attribute::Decrypt(v) => {
                    assert!(!v, "{a:?} on {}", r.kid)
                }
                Attribute::PrivateExponent(_) => {
                    panic!("the private exponent of {} was read", r.kid)
                }
                _ => {}
            }
        }
        assert!(
            attrs
                .iter()
                .any(|a| matches!(a, Attribute::NeverExtractable(true))),
            "{}: CKA_NEVER_EXTRACTABLE not reported",
            r.kid
        );
    }

    // A third party verifies the token through the JWKS (PyJWT).
    let (code, out) = pyjwt_verify(&s.url("/.well-known/jwks.json"), &t.access_token);
    assert_eq!(code, 0, "PyJWT refused a token signed in the token: {out}");
    assert!(objects.contains_key(&kid(&t.access_token)));

    // `keymint keys list` shows each key's backend.
    let listed = crate::harness::run_cli(&site, &["keys", "list"], "").await;
    assert!(listed.status.success());
    let keys: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(keys.len(), 4);
    assert!(keys.iter().all(|k| k["backend"] == "pkcs11"), "{keys:?}");

    // Revoking a key, then cleanup, destroys its token objects (private and public).
    let victim = s
        .app
        .keys
        .active_and_next(Purpose::Access)
        .await
        .unwrap()
        .next;
    s.app.keys.revoke(&victim, s.app.now()).await.unwrap();
    let report = keymint::cleanup::run(&s.app, s.app.now()).await.unwrap();
    assert_eq!(report.hsm_objects, 2, "{report:?}");
    let left = private_keys(&site);
    assert!(
        !left.contains_key(&victim),
        "the revoked key is still in the token"
    );
    assert_eq!(
        left.len(),
        4,
        "the revocation made a fresh next key in the token"
    );

    // Every SQLite connection of this process closes before the files are read: closing any
    // descriptor of a database file drops this process's POSIX locks on it.
    let app = s.app.clone();
    s.stop().await;
    let _ = app.db.clone().close().await;
    let _ = db.close().await;
    drop(app);
    // No private key material on disk: the keys directory holds only the KEK, and neither the
    // database nor its WAL holds a PKCS#8 RSA private key (the DER header of one).
    let names: Vec<String> = std::fs::read_dir(site.keys_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["kek"]);
    let pkcs8_rsa_header = [
        0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
        0x01, 0x05, 0x00, 0x04,
    ];
    for file in std::fs::read_dir(site.dir.path()).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(pkcs8_rsa_header.len())
                    .any(|w| w == pkcs8_rsa_header),
                "{} holds a PKCS#8 RSA private key",
                path.display()
            );
        }
    }
}

/// A change to a site's environment.
type EnvEdit = dyn FnOnce(&mut HashMap<String, String>);

/// Run `keymint keys list` on `site` with `edit` applied to its environment.
fn start_with(site: &Site, edit: impl FnOnce(&mut HashMap<String, String>)) -> (i32, String) {
    let mut env = site.env(&[]);
    edit(&mut env);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keymint"))
        .args(["keys", "list"])
        .env_clear()
        .envs(&env)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("SOFTHSM2_CONF", std::env::var_os("SOFTHSM2_CONF").unwrap())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_module_token_or_pin_stops_start_up_with_one_line() {
    let Some(site) = Site::pkcs11(Backend::Sqlite, "hsm::wrong_module_token_or_pin").await else {
        return;
    };
    let real_pin = site.pkcs11.clone().unwrap().1;
    let cases: Vec<(&str, Box<EnvEdit>)> = vec![
        (
            "KEYMINT_PKCS11_MODULE",
            Box::new(|e| {
                e.insert(
                    "KEYMINT_PKCS11_MODULE".into(),
                    "/nonexistent/pkcs11.so".into(),
                );
            }),
        ),
        (
            "KEYMINT_PKCS11_MODULE",
            Box::new(|e| {
                e.remove("KEYMINT_PKCS11_MODULE");
            }),
        ),
        (
            "KEYMINT_PKCS11_TOKEN",
            Box::new(|e| {
                e.insert("KEYMINT_PKCS11_TOKEN".into(), "no-such-token".into());
            }),
        ),
        (
            "KEYMINT_PKCS11_PIN",
            Box::new(|e| {
                e.insert("KEYMINT_PKCS11_PIN".into(), "wrong-pin-4711".into());
            }),
        ),
    ];
    for (setting, edit) in cases {
        let (code, stderr) = start_with(&site, edit);
        assert_eq!(code, 2, "{setting}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{setting}: one line, got {stderr}");
        assert!(lines[0].contains(setting), "{setting}: {stderr}");
        assert!(
            !stderr.contains("wrong-pin-4711") && !stderr.contains(&real_pin),
            "a PIN reached the log: {stderr}"
        );
    }
    // The right settings start.
    let (code, stderr) = start_with(&site, |_| {});
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_backends_keeps_every_token_valid() {
    let Some(site) = Site::pkcs11(Backend::Sqlite, "hsm::switching_backends").await else {
        return;
    };
    // Until now: local keys.
    let before = Server::start(&site, &[("KEYMINT_SIGNER", "local")]).await;
    before.user("kai", "kai-password-1", &[]).await;
    let t_local = before.login("kai", "kai-password-1").await;
    before.stop().await;

    // Restarted with the token: old keys keep signing until they retire; two rotations later
    // an HSM key signs (the first promotes the local next key and makes an HSM next key).
    let s = Server::start(&site, &[]).await;
    let t_still_local = s.login("kai", "kai-password-1").await;
    assert_eq!(kid(&t_still_local.access_token), kid(&t_local.access_token));
    for _ in 0..2 {
        s.app
            .keys
            .rotate(Purpose::Access, s.app.now())
            .await
            .unwrap();
        s.app
            .keys
            .rotate(Purpose::Refresh, s.app.now())
            .await
            .unwrap();
    }
    let t_hsm = s.login("kai", "kai-password-1").await;
    let listed = s.app.keys.list().await.unwrap();
    let backend_of = |k: &str| listed.iter().find(|i| i.kid == k).unwrap().backend;
    assert_eq!(
        backend_of(&kid(&t_hsm.access_token)),
        keymint::keys::Backend::Pkcs11
    );
    assert_eq!(
        backend_of(&kid(&t_local.access_token)),
        keymint::keys::Backend::Local
    );
    // Every token issued across the switch still verifies, here and for a third party.
    for t in [&t_local, &t_still_local, &t_hsm] {
        assert_eq!(s.get("/auth/me", Some(&t.access_token)).await.status(), 200);
        let (code, out) = pyjwt_verify(&s.url("/.well-known/jwks.json"), &t.access_token);
        assert_eq!(code, 0, "{out}");
    }
    // A refresh token signed by the local key refreshes into an HSM-signed pair.
    let r = s
        .post_json(
            "/auth/refresh",
            &serde_json::json!({"refresh_token": t_still_local.refresh_token}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    s.stop().await;

    // Back without the token while an HSM key signs: refused at start, naming the setting.
    let (code, stderr) = start_with(&site, |e| {
        e.insert("KEYMINT_SIGNER".into(), "local".into());
        e.remove("KEYMINT_PKCS11_MODULE");
    });
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("KEYMINT_PKCS11_MODULE"), "{stderr}");
}
