//! `/admin/users` and `/admin/clients` CRUD, authorisation, and the last-admin guard.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_dbs;
use crate::harness::{Backend, Server, Site, assert_error};

both_dbs!(users_and_clients_crud);

async fn users_and_clients_crud(b: Backend) {
    let site = Site::new(b).await;
    let s = Server::start(&site, &[]).await;
    let root = s.user("root", "root-password", &["admin"]).await;
    let admin = s.login("root", "root-password").await.access_token;

    let r = s
        .post_json(
            "/admin/users",
            &json!({"username": "bob", "password": "bob-password", "roles": ["ops"]}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let bob: Value = r.json().await.unwrap();
    assert_eq!(
        (
            bob["username"].as_str(),
            bob["roles"].clone(),
            bob["disabled"].as_bool()
        ),
        (Some("bob"), json!(["ops"]), Some(false))
    );
    assert!(bob.get("password_hash").is_none() && bob["created_at"].is_i64());
    let id = bob["id"].as_str().unwrap();
    let r = s
        .post_json(
            "/admin/users",
            &json!({"username": "bob", "password": "other-password"}),
            Some(&admin),
        )
        .await;
    assert_error(r, 409, "CONFLICT").await;
    let r = s
        .post_json(
            "/admin/users",
            &json!({"username": "x", "password": "short"}),
            Some(&admin),
        )
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let r = s
        .post_json(
            "/admin/users",
            &json!({"username": "y", "password": "long-enough", "roles": ["Bad Role"]}),
            Some(&admin),
        )
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;

    let got: Value = s
        .get(&format!("/admin/users/{id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, bob);
    assert_error(
        s.get("/admin/users/nope", Some(&admin)).await,
        404,
        "NOT_FOUND",
    )
    .await;
    let list: Value = s
        .get("/admin/users", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // Non-admins are forbidden; roles are read from the database at each request.
    let bob_token = s.login("bob", "bob-password").await.access_token;
    assert_error(
        s.get("/admin/users", Some(&bob_token)).await,
        403,
        "FORBIDDEN",
    )
    .await;
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"roles": ["ops", "admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["roles"],
        json!(["ops", "admin"])
    );
    assert_eq!(
        s.get("/admin/users", Some(&bob_token)).await.status(),
        StatusCode::OK
    );

    // Password change revokes sessions; the new password works.
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"password": "new-bob-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_error(
        s.get("/auth/me", Some(&bob_token)).await,
        401,
        "TOKEN_REVOKED",
    )
    .await;
    s.login("bob", "new-bob-password").await;
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"colour": "blue"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "VALIDATION_ERROR").await;

    // The last enabled admin cannot be removed, demoted or disabled.
    let r = s
        .http
        .delete(s.url(&format!("/admin/users/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .http
        .delete(s.url(&format!("/admin/users/{}", root.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "CONFLICT").await;
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{}", root.id)))
        .bearer_auth(&admin)
        .json(&json!({"roles": []}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "CONFLICT").await;
    let r = s
        .http
        .patch(s.url(&format!("/admin/users/{}", root.id)))
        .bearer_auth(&admin)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, "CONFLICT").await;
    let r = s
        .http
        .delete(s.url(&format!("/admin/users/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(r, 404, "NOT_FOUND").await;

    // Clients: the secret is shown once, never listed.
    let r = s
        .post_json(
            "/admin/clients",
            &json!({"name": "svc", "grant_types": ["client_credentials"], "scopes": ["a"]}),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c: Value = r.json().await.unwrap();
    let secret = c["client_secret"].as_str().unwrap();
    assert_eq!(secret.len(), 43, "256 bits, base64url");
    let cid = c["client_id"].as_str().unwrap();
    let listed = s
        .get("/admin/clients", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    assert!(listed.contains(cid) && !listed.contains(secret));
    let one: Value = s
        .get(&format!("/admin/clients/{cid}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert!(one.get("client_secret").is_none());
    let r = s
        .post_json(
            "/admin/clients",
            &json!({"name": "svc", "grant_types": ["implicit"]}),
            Some(&admin),
        )
        .await;
    assert_error(r, 400, "VALIDATION_ERROR").await;
    let r = s
        .http
        .delete(s.url(&format!("/admin/clients/{cid}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_error(
        s.get(&format!("/admin/clients/{cid}"), Some(&admin)).await,
        404,
        "NOT_FOUND",
    )
    .await;

    // Audit paging.
    let p1: Value = s
        .get("/admin/audit?limit=2", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p1["events"].as_array().unwrap().len(), 2);
    let before = p1["next_before"].as_i64().unwrap();
    let p2: Value = s
        .get(
            &format!("/admin/audit?limit=2&before={before}"),
            Some(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(p2["events"][0]["id"].as_i64().unwrap() < before);
    assert_error(
        s.get("/admin/audit?limit=0", Some(&admin)).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    s.stop().await;
}
