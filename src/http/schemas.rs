//! OpenAPI schemas of the domain types the API sends and receives. The domain stays free of
//! documentation concerns: each schema here is named after its domain type (`as = …`) and a
//! test keeps its properties identical to what the domain type serializes.

#![allow(dead_code)] // schema only: never constructed

use serde::Serialize;
use utoipa::ToSchema;

/// What a key signs. Access keys are published; refresh keys never are.
#[derive(ToSchema)]
#[schema(as = Purpose, rename_all = "lowercase")]
pub enum PurposeDoc {
    Access,
    Refresh,
}

/// Where a key is in its lifecycle.
#[derive(ToSchema)]
#[schema(as = KeyState, rename_all = "lowercase")]
pub enum KeyStateDoc {
    /// Published, not yet signing.
    Next,
    /// The one key of its purpose that signs.
    Active,
    /// No longer signs; still verifies until every token it signed has expired.
    Retired,
    /// Compromised: unpublished and refused at once.
    Revoked,
}

/// Where a key's private half is held.
#[derive(ToSchema)]
#[schema(as = KeyBackend, rename_all = "lowercase")]
pub enum KeyBackendDoc {
    /// Sealed with the KEK in the database, opened into memory to sign.
    Local,
    /// Generated and kept in a PKCS#11 token; it never leaves it.
    Pkcs11,
}

/// Public description of a key for `GET /admin/keys` and `keymint keys list`.
#[derive(ToSchema)]
#[schema(as = KeyInfo, example = json!({"kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "purpose": "access", "state": "retired", "backend": "local", "bits": 2048, "created_at": 1794829678, "activated_at": 1795434478, "retired_at": 1796039278, "revoked_at": null, "expires_at": 1796040208}))]
pub struct KeyInfoDoc {
    pub kid: String,
    pub purpose: PurposeDoc,
    pub state: KeyStateDoc,
    /// Where the private key is held.
    pub backend: KeyBackendDoc,
    pub bits: i32,
    /// Unix seconds.
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// When a retired key stops verifying and may be removed.
    pub expires_at: Option<i64>,
}

/// The active and next kid of one purpose after a change.
#[derive(ToSchema)]
#[schema(as = ActiveAndNext)]
pub struct ActiveAndNextDoc {
    pub active: String,
    pub next: String,
}

/// The active and next kid of each purpose after a rotation.
#[derive(ToSchema)]
#[schema(as = RotationResult, example = json!({"access": {"active": "kid-a2", "next": "kid-a3"}, "refresh": {"active": "kid-r1", "next": "kid-r2"}}))]
pub struct RotationResultDoc {
    pub access: ActiveAndNextDoc,
    pub refresh: ActiveAndNextDoc,
}

/// One public key in JWKS form (RFC 7517).
#[derive(Serialize, ToSchema)]
#[schema(as = Jwk)]
pub struct JwkDoc {
    #[schema(example = "RSA")]
    pub kty: String,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: String,
    #[schema(example = "RS256")]
    pub alg: String,
    /// RFC 7638 thumbprint of the key.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Public exponent, base64url.
    #[schema(example = "AQAB")]
    pub e: String,
}

/// The JWKS document.
#[derive(ToSchema)]
#[schema(as = Jwks, example = json!({"keys": [{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw", "e": "AQAB"}]}))]
pub struct JwksDoc {
    pub keys: Vec<JwkDoc>,
}

/// A user as the API shows it: never the hash.
#[derive(ToSchema)]
#[schema(as = User, example = json!({"id": "6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f", "username": "alice", "roles": ["admin"], "disabled": false, "created_at": 1795434478, "name": "Alice Example", "email": "alice@example.com"}))]
pub struct UserDoc {
    #[schema(example = "6f1c2d4e-8a7b-4c3d-9e2f-1a2b3c4d5e6f")]
    pub id: String,
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = json!(["admin"]))]
    pub roles: Vec<String>,
    pub disabled: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Display name (OpenID Connect `name`).
    #[schema(example = "Alice Example")]
    pub name: Option<String>,
    /// OpenID Connect `email` (never claimed as verified).
    #[schema(example = "alice@example.com")]
    pub email: Option<String>,
}

/// A client as the API shows it: never the secret or its digest.
#[derive(ToSchema)]
#[schema(as = Client, example = json!({"client_id": "c_5f2b8e0c9a7d4f1e8b3a6c2d1e0f9a8b", "name": "billing-service", "grant_types": ["client_credentials"], "scopes": ["billing:read"], "audience": "https://billing.example", "created_at": 1795434478, "redirect_uris": [], "post_logout_redirect_uris": [], "public": false, "consent": false}))]
pub struct ClientDoc {
    #[schema(example = "c_5f2b8e0c9a7d4f1e8b3a6c2d1e0f9a8b")]
    pub client_id: String,
    #[schema(example = "billing-service")]
    pub name: String,
    #[schema(example = json!(["client_credentials"]))]
    pub grant_types: Vec<String>,
    #[schema(example = json!(["billing:read"]))]
    pub scopes: Vec<String>,
    /// `aud` of the access tokens this client receives; keymint's audience when absent.
    pub audience: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Where `/oauth/authorize` may send the browser back (exact match).
    #[schema(example = json!([]))]
    pub redirect_uris: Vec<String>,
    /// Where `/oauth/logout` may send the browser after signing out (exact match).
    #[schema(example = json!([]))]
    pub post_logout_redirect_uris: Vec<String>,
    /// A public client has no secret (token endpoint authentication `none`).
    pub public: bool,
    /// Ask each user's consent once per scope set.
    pub consent: bool,
}

/// What to create.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewClient)]
pub struct NewClientDoc {
    #[schema(example = "billing-service", pattern = "\\S", max_length = 128)]
    pub name: String,
    #[schema(example = json!(["client_credentials"]), value_type = Vec<GrantType>, min_items = 1)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    #[schema(example = json!(["billing:read"]), value_type = Vec<ScopeToken>, max_items = 64)]
    pub scopes: Vec<String>,
    #[serde(default)]
    #[schema(example = "https://billing.example", pattern = "\\S", max_length = 256)]
    pub audience: Option<String>,
    /// Required for `authorization_code`: absolute `https` URIs (or `http` on a loopback
    /// host, or a private-use scheme), no fragment; matched exactly.
    #[serde(default)]
    #[schema(example = json!([]), max_items = 16)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    #[schema(example = json!([]), max_items = 16)]
    pub post_logout_redirect_uris: Vec<String>,
    /// No secret is issued; only `authorization_code` and `refresh_token` are allowed.
    #[serde(default)]
    pub public: bool,
    /// Show a consent page once per user and scope set.
    #[serde(default)]
    pub consent: bool,
}

/// A grant type a client may be allowed (schema only).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum GrantType {
    Password,
    RefreshToken,
    ClientCredentials,
    AuthorizationCode,
}

/// An RFC 6749 scope token (schema only).
#[derive(ToSchema)]
#[schema(
    pattern = "^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$",
    min_length = 1,
    max_length = 64
)]
pub struct ScopeToken(String);

/// RFC 7662 introspection response.
#[derive(Serialize, ToSchema)]
#[schema(as = Introspection, example = json!({"active": true, "sub": "c_5f2b8e0c", "exp": 1795435379, "iat": 1795434479, "jti": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "scope": "billing:read", "client_id": "c_5f2b8e0c", "token_type": "access_token", "iss": "http://127.0.0.1:8080", "aud": "https://billing.example"}))]
pub struct IntrospectionDoc {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use utoipa::PartialSchema;

    fn documented<T: PartialSchema>() -> BTreeSet<String> {
        let v = serde_json::to_value(T::schema()).unwrap();
        let props = v["properties"].as_object().cloned().unwrap_or_default();
        props.keys().cloned().collect()
    }

    fn serialized(v: impl serde::Serialize) -> BTreeSet<String> {
        serde_json::to_value(v)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    fn enum_values<T: PartialSchema>() -> Vec<String> {
        let v = serde_json::to_value(T::schema()).unwrap();
        v["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn every_schema_has_exactly_the_fields_its_domain_type_sends() {
        use crate::keys::{ActiveAndNext, Jwk, Jwks, KeyInfo, KeyState, Purpose};
        let info = KeyInfo {
            kid: "k".into(),
            purpose: Purpose::Access,
            state: KeyState::Next,
            backend: crate::keys::Backend::Pkcs11,
            bits: 2048,
            created_at: 0,
            activated_at: None,
            retired_at: None,
            revoked_at: None,
            expires_at: None,
        };
        assert_eq!(serialized(&info), documented::<KeyInfoDoc>());
        let an = ActiveAndNext {
            active: "a".into(),
            next: "n".into(),
        };
        assert_eq!(serialized(&an), documented::<ActiveAndNextDoc>());
        let rr = crate::keys::admin::RotationResult {
            access: an.clone(),
            refresh: an,
        };
        assert_eq!(serialized(&rr), documented::<RotationResultDoc>());
        let jwk = Jwk {
            kty: "RSA".into(),
            use_: "sig".into(),
            alg: "RS256".into(),
            kid: "k".into(),
            n: "n".into(),
            e: "e".into(),
        };
        assert_eq!(serialized(&jwk), documented::<JwkDoc>());
        assert_eq!(serialized(Jwks { keys: vec![] }), documented::<JwksDoc>());
        let user = crate::users::User {
            id: "i".into(),
            username: "u".into(),
            roles: vec![],
            disabled: false,
            created_at: 0,
            name: None,
            email: None,
        };
        assert_eq!(serialized(&user), documented::<UserDoc>());
        let client = crate::clients::Client {
            client_id: "c".into(),
            name: "n".into(),
            grant_types: vec![],
            scopes: vec![],
            audience: None,
            created_at: 0,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            public: false,
            consent: false,
        };
        assert_eq!(serialized(&client), documented::<ClientDoc>());
        let new: crate::clients::NewClient = serde_json::from_value(serde_json::json!({
            "name": "n", "grant_types": ["password"], "scopes": [], "audience": "a"
        }))
        .unwrap();
        let doc = NewClientDoc {
            name: new.name,
            grant_types: new.grant_types,
            scopes: new.scopes,
            audience: new.audience,
            redirect_uris: new.redirect_uris,
            post_logout_redirect_uris: new.post_logout_redirect_uris,
            public: new.public,
            consent: new.consent,
        };
        assert_eq!(serialized(&doc), documented::<NewClientDoc>());
        let full = crate::oauth::Introspection {
            active: true,
            sub: Some("s".into()),
            exp: Some(1),
            iat: Some(1),
            jti: Some("j".into()),
            scope: Some("s".into()),
            client_id: Some("c".into()),
            token_type: Some("access_token".into()),
            iss: Some("i".into()),
            aud: Some("a".into()),
        };
        assert_eq!(serialized(&full), documented::<IntrospectionDoc>());
        let purposes: Vec<String> = Purpose::ALL.iter().map(|p| p.as_str().into()).collect();
        assert_eq!(purposes, enum_values::<PurposeDoc>());
        let states: Vec<String> = [
            KeyState::Next,
            KeyState::Active,
            KeyState::Retired,
            KeyState::Revoked,
        ]
        .iter()
        .map(|s| s.as_str().into())
        .collect();
        assert_eq!(states, enum_values::<KeyStateDoc>());
        let backends: Vec<String> = [crate::keys::Backend::Local, crate::keys::Backend::Pkcs11]
            .iter()
            .map(|b| b.as_str().into())
            .collect();
        assert_eq!(backends, enum_values::<KeyBackendDoc>());
        let grants: Vec<String> = crate::clients::GRANT_TYPES
            .iter()
            .map(|g| g.to_string())
            .collect();
        assert_eq!(grants, enum_values::<GrantType>());
    }
}
