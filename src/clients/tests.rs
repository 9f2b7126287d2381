use super::*;

#[test]
fn scope_tokens() {
    assert!(valid_scope_token("billing:read"));
    assert!(!valid_scope_token("two words"));
    assert!(!valid_scope_token("quo\"te"));
    assert!(!valid_scope_token(""));
}

#[test]
fn redirect_uris() {
    assert!(valid_redirect_uri("https://app.example/cb?x=1"));
    assert!(valid_redirect_uri("http://127.0.0.1:8000/cb"));
    assert!(valid_redirect_uri("http://localhost/cb"));
    assert!(valid_redirect_uri("com.example.app:/cb"));
    assert!(
        !valid_redirect_uri("http://app.example/cb"),
        "http off loopback"
    );
    assert!(!valid_redirect_uri("https://app.example/cb#frag"));
    assert!(!valid_redirect_uri("https://user:pw@app.example/cb"));
    assert!(!valid_redirect_uri("javascript:alert(1)"));
    assert!(!valid_redirect_uri("/relative"));
}

#[test]
fn digest_is_lowercase_hex_sha256() {
    assert_eq!(
        digest("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
