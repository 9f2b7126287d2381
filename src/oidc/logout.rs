//! RP-Initiated Logout 1.0 (`/oauth/logout`): which sessions to end and where the browser
//! goes afterwards. A valid `id_token_hint` names the SSO session (its `sid`) and the client;
//! without one, the user confirms on a page first, so a third-party site cannot sign them out.
//! `post_logout_redirect_uri` must be registered for the client, exactly.

use super::authorize::with_query;
use super::code::IdClaims;
use super::sso::{self, SsoSession};
use crate::audit::{self, Event};
use crate::error::Result;
use crate::state::App;

/// The request's parameters.
pub struct LogoutRequest<'a> {
    pub id_token_hint: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub client_id: Option<&'a str>,
}

/// A checked logout request.
#[derive(Debug)]
pub struct Plan {
    /// The hint's session and user, when a valid hint came.
    pub hinted: Option<(String, String)>,
    /// Where to send the browser afterwards (with `state`); `None`: the signed-out page.
    pub redirect: Option<String>,
}

/// Check a logout request: `Err(message)` is a 400 page (never a redirect).
pub async fn check(
    app: &App,
    r: &LogoutRequest<'_>,
    now: i64,
) -> Result<std::result::Result<Plan, String>> {
    // A hint that no longer verifies (its key retired past its lifetime, say) names no
    // session, so the user confirms; its `aud` may still name the client whose registered
    // post-logout URIs apply (a URI must match one of them exactly, so nothing is trusted).
    let (hint, unverified_aud) = match r.id_token_hint {
        Some(t) => match verify_hint(app, t, now) {
            Ok(c) => (Some(c), None),
            Err(_) => (None, unverified_audience(t)),
        },
        None => (None, None),
    };
    let aud = hint
        .as_ref()
        .map(|h| h.aud.as_str())
        .or(unverified_aud.as_deref());
    let client_id = match (aud, r.client_id) {
        (Some(a), Some(c)) if a != c => {
            return Ok(Err("client_id does not match the id_token_hint".into()));
        }
        (Some(a), _) => Some(a),
        (None, c) => c,
    };
    let redirect = match r.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let client = match client_id {
                Some(id) => app.clients.get(id).await?,
                None => None,
            };
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri));
            if !registered {
                return Ok(Err(
                    "post_logout_redirect_uri is not registered for this client".into(),
                ));
            }
            let params: Vec<(&str, &str)> = r.state.map(|s| ("state", s)).into_iter().collect();
            Some(with_query(uri, &params))
        }
    };
    Ok(Ok(Plan {
        hinted: hint.map(|h| (h.sid, h.sub)),
        redirect,
    }))
}

/// The `aud` of a JWT's payload, unverified (used only to look up registered URIs).
fn unverified_audience(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    v["aud"]
        .as_str()
        .filter(|a| a.len() <= 128)
        .map(str::to_string)
}

/// An ID token keymint signed (`typ: JWT`, an access key that still verifies, our `iss`),
/// whatever its audience and even expired: what an `id_token_hint` must be.
fn verify_hint(app: &App, token: &str, now: i64) -> Result<IdClaims, crate::tokens::Rejection> {
    use jsonwebtoken::{Algorithm, Validation};
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.set_issuer(&[&app.config.issuer]);
    v.set_required_spec_claims(&["iss", "sub", "aud"]);
    let ring = app.keys.ring();
    app.tokens
        .verify(
            &ring,
            token,
            crate::keys::Purpose::Access,
            |t| t == "JWT",
            &v,
            now,
        )
        .map(|(c, _)| c)
}

/// End the hinted session and the browser's own (when it is the same user's, or when the
/// user confirmed), revoking the refresh families they started; audited. Returns how many
/// families were revoked.
pub async fn end(app: &App, plan: &Plan, browser: Option<&SsoSession>, now: i64) -> Result<u64> {
    let mut ended: Vec<(String, String)> = Vec::new();
    if let Some((sid, sub)) = &plan.hinted
        && let Some(s) = sso::find_by_id(app, sid, now).await?
        && &s.user_id == sub
    {
        ended.push((s.id, s.user_id));
    }
    if let Some(b) = browser {
        let same_user = plan
            .hinted
            .as_ref()
            .is_none_or(|(_, sub)| *sub == b.user_id);
        if same_user && !ended.iter().any(|(id, _)| *id == b.id) {
            ended.push((b.id.clone(), b.user_id.clone()));
        }
    }
    let mut revoked = 0;
    for (id, user) in &ended {
        revoked += sso::end(app, id, "logout", now).await?;
        audit::record(
            &app.db,
            Event::new("logout", "ok")
                .actor(Some(user))
                .subject(Some(user))
                .detail(serde_json::json!({"sso": id, "revoked_sessions": revoked})),
            now,
        )
        .await;
    }
    Ok(revoked)
}
