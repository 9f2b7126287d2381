use super::*;
use crate::keys::material::fixture;
use crate::keys::{KeyRing, KeyState, Purpose};

fn setup() -> (Tokens, KeyRing, KeyRing) {
    let (a, r, old) = (fixture(0), fixture(1), fixture(2));
    let t = Tokens::new(
        "https://id.example".into(),
        "https://id.example".into(),
        900,
        86400,
        30,
    );
    let ring = KeyRing::from_keys(&[
        (&a, Purpose::Access, KeyState::Active),
        (&r, Purpose::Refresh, KeyState::Active),
    ])
    .unwrap();
    let other = KeyRing::from_keys(&[(&old, Purpose::Access, KeyState::Active)]).unwrap();
    (t, ring, other)
}

fn who() -> AccessFor {
    AccessFor {
        sub: "u1".into(),
        aud: "https://id.example".into(),
        scope: "profile".into(),
        roles: vec!["admin".into()],
        sid: Some("fam".into()),
        client_id: None,
    }
}

#[test]
fn access_claims_are_made_in_one_shape() {
    let (t, _, _) = setup();
    let c = t.access_claims(who(), 1_000);
    assert_eq!((c.iat, c.nbf, c.exp), (1_000, 1_000, 1_900));
    assert_eq!(c.iss, "https://id.example");
    assert_eq!(c.token_type, "access");
    assert_eq!(c.jti.len(), 32);
    assert_ne!(
        c.jti,
        t.access_claims(who(), 1_000).jti,
        "a fresh jti each time"
    );
}

#[test]
fn tokens_verify_only_against_their_ring_purpose_and_time() {
    let (t, ring, other) = setup();
    let now = crate::clock::system_now();
    let claims = t.access_claims(who(), now);
    let token = t.sign(&ring, Purpose::Access, &claims).unwrap();
    let got = t
        .verify_access(&ring, &token, Some("https://id.example"), now)
        .unwrap();
    assert_eq!(got, claims);
    assert!(
        t.verify_access(&other, &token, None, now).is_err(),
        "unknown kid"
    );
    assert!(
        t.verify_refresh(&ring, &token, now).is_err(),
        "wrong purpose"
    );
    assert!(
        t.verify_access(&ring, &token, Some("https://other.example"), now)
            .is_err(),
        "wrong audience"
    );
    assert_eq!(
        t.verify_access(&ring, &token, None, now + 900 + 31),
        Err(Rejection::Expired),
        "expired past the leeway"
    );
    assert!(
        t.verify_access(&ring, &token, None, now + 900 + 29).is_ok(),
        "within leeway"
    );
}

#[test]
fn a_token_answered_from_the_cache_still_meets_its_key_audience_and_time() {
    let (t, ring, other) = setup();
    let now = crate::clock::system_now();
    let claims = t.access_claims(who(), now);
    let token = t.sign(&ring, Purpose::Access, &claims).unwrap();
    assert_eq!(
        t.verify_access(&ring, &token, None, now),
        Ok(claims.clone())
    );
    assert_eq!(t.verified_len(), 1, "a verified token is held");
    assert_eq!(
        t.verify_access(&ring, &token, None, now),
        Ok(claims.clone())
    );
    // The ring without the token's key (revoked, or past its publication) refuses it.
    assert_eq!(
        t.verify_access(&other, &token, None, now),
        Err(Rejection::UnknownKid)
    );
    assert_eq!(
        t.verify_access(&ring, &token, Some("https://other.example"), now),
        Err(Rejection::Claims)
    );
    assert_eq!(
        t.verify_access(&ring, &token, None, now - 31),
        Err(Rejection::NotYetValid)
    );
    assert_eq!(
        t.verify_access(&ring, &token, None, now + 900 + 31),
        Err(Rejection::Expired)
    );
    assert_eq!(t.verified_len(), 0, "an expired token is dropped");
    // A token that differs in one signature byte is not the cached one: it is verified, and fails.
    t.verify_access(&ring, &token, None, now).unwrap();
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        t.verify_access(&ring, &forged, None, now),
        Err(Rejection::Signature)
    );
}

#[test]
fn the_cache_holds_at_most_its_capacity() {
    let c = cache::VerifiedCache::default();
    let (t, _, _) = setup();
    let claims = t.access_claims(who(), 1_000);
    for i in 0..(cache::CAPACITY * 2) {
        c.insert(cache::digest(&i.to_string()), "kid", &claims, 1_000);
    }
    assert!(c.len() <= cache::CAPACITY, "{} entries", c.len());
    assert!(c.len() >= cache::CAPACITY / 4, "{} entries", c.len());
}
