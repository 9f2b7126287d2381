"""An OpenID Connect relying party keymint did not write: Authlib runs the code flow.

A confidential client (client_secret_basic) signs a user in through keymint's hosted login
page, with a `requests.Session` as the browser (it keeps cookies and follows no redirect on
its own, so every hop is checked), and then:
- exchanges the code with PKCE (S256) through Authlib's `OAuth2Session`;
- validates the ID token the way Authlib's own OpenID client does: JWS signature against the
  JWKS from discovery (joserfc, Authlib's JOSE layer) and `CodeIDToken` for iss, aud, exp,
  iat, nonce, azp and at_hash; and shows that this validation refuses a tampered signature,
  a wrong nonce and a wrong audience;
- reads the UserInfo endpoint, refreshes (rotation), authorizes again with `prompt=none` (single sign-on,
  no login page), uses that second code twice (the second use must fail and revoke what the
  first issued), ends the session with RP-initiated logout, and then sees the refresh token,
  the access token and `prompt=none` refused.

Configuration (environment): OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI,
OIDC_POST_LOGOUT_REDIRECT_URI, OIDC_USERNAME, OIDC_PASSWORD, optional OIDC_SCOPE (default
"openid profile email").

Prints one JSON object on stdout: {"ok": true, ...what was checked and seen...}, exit 0; on any
failure {"ok": false, "step": ..., "error": ...} on stdout, the same on stderr, exit 1.
"""
import base64
import hashlib
import json
import os
import secrets
import sys
import traceback
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

# A loopback test server over plain HTTP; Authlib refuses http:// otherwise.
os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import requests  # noqa: E402
from authlib.integrations.requests_client import OAuth2Session  # noqa: E402
from authlib.oidc.core import CodeIDToken, IDToken  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402

TIMEOUT = 15  # seconds per HTTP request
STEP = "start"


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def step(name):
    global STEP
    STEP = name


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise Failure(f"the environment variable {name} is not set")
    return value


# ---- HTML: the hosted login page and the consent page, read as a script-free browser would.


class Forms(HTMLParser):
    """Every <form> with its inputs and buttons, every <label>, and whether any <script> occurs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.labels = []  # (for attribute or None, ids of the inputs nested in it)
        self.scripts = 0
        self._label = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "script":
            self.scripts += 1
        elif tag == "form":
            self.forms.append(
                {"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                 "inputs": [], "buttons": []}
            )
        elif tag == "label":
            self._label = {"for": a.get("for"), "nested": []}
            self.labels.append(self._label)
        elif tag in ("input", "button", "select", "textarea") and self.forms:
            kind = a.get("type", "submit" if tag == "button" else "text").lower()
            field = {"tag": tag, "type": kind, "name": a.get("name"),
                     "value": a.get("value", ""), "id": a.get("id")}
            if kind == "submit":
                self.forms[-1]["buttons"].append(field)
            else:
                self.forms[-1]["inputs"].append(field)
            if self._label is not None:
                self._label["nested"].append(a.get("id") or ("name:" + (a.get("name") or "")))

    def handle_endtag(self, tag):
        if tag == "label":
            self._label = None

    def form(self, action):
        for f in self.forms:
            if urlsplit(f["action"]).path == action:
                return f
        return None

    def labelled(self, field):
        """Whether `field` has a <label>: by `for` = its id, or nested in one."""
        for label in self.labels:
            if field["id"] and (label["for"] == field["id"] or field["id"] in label["nested"]):
                return True
            if not field["id"] and ("name:" + (field["name"] or "")) in label["nested"]:
                return True
        return False


def parse_html(text):
    p = Forms()
    p.feed(text)
    p.close()
    return p


def hidden(form, name):
    for field in form["inputs"]:
        if field["name"] == name:
            return field["value"]
    raise Failure(f"the form posting to {form['action']} has no input named {name!r}")


def set_cookies(resp):
    """The Set-Cookie headers of one response as {name: {"value", attribute: value...}}."""
    out = {}
    for line in resp.raw.headers.getlist("Set-Cookie"):
        parts = [p.strip() for p in line.split(";")]
        name, _, value = parts[0].partition("=")
        attrs = {"value": value}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            attrs[k.lower()] = v if v else True
        out[name] = attrs
    return out


class Browser:
    """A user agent without script: keeps cookies, follows redirects one hop at a time."""

    def __init__(self, issuer, redirect_uri, username, password):
        self.http = requests.Session()
        self.issuer = issuer
        self.redirect_uri = redirect_uri
        self.username = username
        self.password = password
        self.login_page = None
        self.sso_cookie = None
        self.login_cookie = None

    def hop(self, method, url, trail, **kw):
        resp = self.http.request(method, url, allow_redirects=False, timeout=TIMEOUT, **kw)
        trail.append({"method": method, "path": urlsplit(url).path, "status": resp.status_code})
        return resp

    def authorize(self, url):
        """Follow `url` (an authorization request) through login and consent until keymint
        redirects to the client. Returns (the redirect's URL, the trail of hops)."""
        trail = []
        resp = self.hop("GET", url, trail)
        for _ in range(12):
            if resp.status_code in (301, 302, 303, 307, 308):
                loc = resp.headers.get("Location")
                check(loc, f"{resp.status_code} from {resp.url} without a Location")
                target = urljoin(resp.url, loc)
                if target.split("?")[0] == self.redirect_uri:
                    trail.append({"redirect": "client"})
                    return target, trail
                check(target.startswith(self.issuer + "/"),
                      f"keymint redirected the browser to a third party: {target}")
                resp = self.hop("GET", target, trail)
                continue
            check(resp.status_code == 200,
                  f"{urlsplit(resp.url).path} answered {resp.status_code}: {resp.text[:300]}")
            page = parse_html(resp.text)
            login = page.form("/login")
            consent = page.form("/oauth/consent")
            if login is not None:
                resp = self.sign_in(resp, page, login, trail)
            elif consent is not None:
                trail[-1]["consent"] = True
                allow = [b for b in consent["buttons"]
                         if b["name"] == "decision" and b["value"] == "allow"]
                check(allow, "the consent page has no button decision=allow")
                resp = self.hop("POST", urljoin(resp.url, consent["action"]), trail, data={
                    "request": hidden(consent, "request"),
                    "csrf": hidden(consent, "csrf"),
                    "decision": "allow",
                })
            else:
                raise Failure(f"{urlsplit(resp.url).path}: a page with neither the login nor "
                              f"the consent form: {resp.text[:300]}")
        raise Failure("more than 12 hops between the authorization request and the client")

    def sign_in(self, resp, page, form, trail):
        check(form["method"] == "post", f"the login form's method is {form['method']!r}")
        fields = {f["name"]: f for f in form["inputs"] if f["name"]}
        for name, kind in (("username", None), ("password", "password")):
            check(name in fields, f"the login form has no input named {name!r}")
            if kind:
                check(fields[name]["type"] == kind,
                      f"the {name} input has type {fields[name]['type']!r}")
            check(page.labelled(fields[name]), f"the {name} input has no <label>")
        csrf = hidden(form, "csrf")
        return_to = hidden(form, "return_to")
        cookies = set_cookies(resp)
        check("km_login" in cookies, f"GET /login set no km_login cookie: {list(cookies)}")
        self.login_cookie = {k: v for k, v in cookies["km_login"].items() if k != "value"}
        self.login_page = {
            "path": urlsplit(resp.url).path,
            "csp": resp.headers.get("Content-Security-Policy"),
            "scripts": page.scripts,
            "labelled": True,
            "return_to": return_to,
            "login_hint": parse_qs(urlsplit(resp.url).query).get("login_hint", [None])[0],
        }
        check(return_to.startswith("/oauth/authorize?"),
              f"return_to is not the relative authorization request: {return_to!r}")
        posted = self.hop("POST", urljoin(resp.url, form["action"]), trail, data={
            "username": self.username,
            "password": self.password,
            "csrf": csrf,
            "return_to": return_to,
        })
        check(posted.status_code == 303,
              f"POST /login answered {posted.status_code}: {posted.text[:300]}")
        cookies = set_cookies(posted)
        check("km_sso" in cookies, f"POST /login set no km_sso cookie: {list(cookies)}")
        self.sso_cookie = {k: v for k, v in cookies["km_sso"].items() if k != "value"}
        self.sso_cookie["value_chars"] = len(cookies["km_sso"]["value"])
        loc = posted.headers.get("Location", "")
        check(loc == return_to, f"POST /login redirected to {loc!r}, not to return_to")
        return posted


def callback_params(url, state, issuer):
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    check(q.get("state") == state, f"the redirect carries state {q.get('state')!r}, not ours")
    check(q.get("iss") == issuer, f"the redirect carries iss {q.get('iss')!r} (RFC 9207)")
    return q


def jwk_set(meta):
    r = requests.get(meta["jwks_uri"], timeout=TIMEOUT)
    check(r.status_code == 200, f"GET jwks_uri answered {r.status_code}")
    return r.json()


def validate_id_token(id_token, jwks, issuer, client_id, nonce, access_token, claims_cls):
    """What Authlib's OpenIDMixin.parse_id_token does, without leeway to hide clock games."""
    key_set = KeySet.import_key_set(jwks)
    token = jwt.decode(id_token, key_set, algorithms=["RS256"])
    options = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "sub": {"essential": True},
    }
    params = {"client_id": client_id, "access_token": access_token}
    if nonce is not None:
        params["nonce"] = nonce
    claims = claims_cls(token.claims, token.header, options, params)
    claims.validate(leeway=5)
    return dict(token.header), dict(claims)


def refused(fn):
    """The class name of what `fn` raised, or None when it accepted."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any refusal counts, its kind is reported
        return type(e).__name__
    return None


def at_hash(access_token):
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def token_error(resp):
    try:
        body = resp.json()
    except ValueError:
        body = {}
    return {"status": resp.status_code, "error": body.get("error")}


def run():
    issuer = env("OIDC_ISSUER").rstrip("/")
    client_id = env("OIDC_CLIENT_ID")
    client_secret = env("OIDC_CLIENT_SECRET")
    redirect_uri = env("OIDC_REDIRECT_URI")
    post_logout = env("OIDC_POST_LOGOUT_REDIRECT_URI")
    username = env("OIDC_USERNAME")
    password = env("OIDC_PASSWORD")
    scope = env("OIDC_SCOPE", "openid profile email")
    out = {"ok": False}

    step("discovery")
    r = requests.get(issuer + "/.well-known/openid-configuration", timeout=TIMEOUT)
    check(r.status_code == 200, f"discovery answered {r.status_code}")
    meta = r.json()
    check(meta.get("issuer") == issuer, f"discovery names issuer {meta.get('issuer')!r}")
    for k in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint",
              "end_session_endpoint", "jwks_uri"):
        check(isinstance(meta.get(k), str) and meta[k].startswith(issuer + "/"),
              f"discovery: {k} = {meta.get(k)!r}, not under the issuer")
    check("S256" in meta.get("code_challenge_methods_supported", []),
          "discovery does not offer PKCE S256")
    check("RS256" in meta.get("id_token_signing_alg_values_supported", []),
          "discovery does not offer RS256 ID tokens")
    out["discovery"] = {k: meta.get(k) for k in (
        "issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint",
        "end_session_endpoint", "jwks_uri", "code_challenge_methods_supported",
        "response_types_supported", "token_endpoint_auth_methods_supported",
        "id_token_signing_alg_values_supported",
        "authorization_response_iss_parameter_supported")}
    jwks = jwk_set(meta)
    kids = [k.get("kid") for k in jwks.get("keys", [])]

    rp = OAuth2Session(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_basic",
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    browser = Browser(issuer, redirect_uri, username, password)

    step("authorization (hosted login)")
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce,
        login_hint=username)
    q = parse_qs(urlsplit(url).query)
    check(q.get("code_challenge_method") == ["S256"] and q.get("code_challenge"),
          "Authlib built no S256 code challenge")
    callback, trail = browser.authorize(url)
    params = callback_params(callback, state, issuer)
    check("code" in params, f"the redirect carries no code: {callback}")
    check(browser.login_page is not None, "the first authorization showed no login page")
    out["login"] = {
        "trail": trail,
        "page": browser.login_page,
        "login_cookie": browser.login_cookie,
        "sso_cookie": browser.sso_cookie,
        "consent_shown": any(h.get("consent") for h in trail),
    }
    out["callback"] = {"state_matches": True, "iss": params["iss"],
                       "code_chars": len(params["code"])}

    step("token (authorization_code)")
    token = rp.fetch_token(meta["token_endpoint"], authorization_response=callback,
                           state=state, code_verifier=verifier)
    check(token.get("token_type", "").lower() == "bearer",
          f"token_type {token.get('token_type')!r}")
    for k in ("access_token", "id_token", "refresh_token"):
        check(isinstance(token.get(k), str), f"the token response has no {k}")
    out["tokens"] = {
        "token_type": token.get("token_type"),
        "scope": token.get("scope"),
        "expires_in": token.get("expires_in"),
        "refresh_expires_in": token.get("refresh_expires_in"),
        "has_refresh_token": True,
    }

    step("ID token")
    header, claims = validate_id_token(token["id_token"], jwks, issuer, client_id, nonce,
                                       token["access_token"], CodeIDToken)
    check(header.get("alg") == "RS256", f"ID token alg {header.get('alg')!r}")
    check(header.get("typ") == "JWT", f"ID token typ {header.get('typ')!r}")
    check(header.get("kid") in kids, f"ID token kid {header.get('kid')!r} not in the JWKS")
    check(claims.get("nonce") == nonce, "the ID token's nonce is not ours")
    check(claims.get("at_hash") == at_hash(token["access_token"]),
          "the ID token's at_hash does not match the access token")
    check(claims.get("azp") == client_id, f"azp {claims.get('azp')!r}")
    head, _, sig = token["id_token"].rpartition(".")
    tampered = head + "." + ("A" if sig[10] != "A" else "B").join([sig[:10], sig[11:]])
    rejects = {
        "tampered_signature": refused(lambda: validate_id_token(
            tampered, jwks, issuer, client_id, nonce, token["access_token"], CodeIDToken)),
        "wrong_nonce": refused(lambda: validate_id_token(
            token["id_token"], jwks, issuer, client_id, nonce + "x", token["access_token"],
            CodeIDToken)),
        "wrong_audience": refused(lambda: validate_id_token(
            token["id_token"], jwks, issuer, client_id + "x", nonce, token["access_token"],
            CodeIDToken)),
        "wrong_issuer": refused(lambda: validate_id_token(
            token["id_token"], jwks, issuer + "/x", client_id, nonce, token["access_token"],
            CodeIDToken)),
    }
    for what, err in rejects.items():
        check(err is not None, f"the validation accepted an ID token with a {what}")
    out["id_token"] = {"header": header, "claims": claims, "validated": True,
                       "rejects": rejects}

    step("userinfo")
    r = rp.get(meta["userinfo_endpoint"], timeout=TIMEOUT)
    check(r.status_code == 200, f"userinfo answered {r.status_code}: {r.text[:300]}")
    userinfo = r.json()
    check(userinfo.get("sub") == claims["sub"], "userinfo's sub is not the ID token's")
    out["userinfo"] = userinfo

    step("refresh")
    first = dict(token)
    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=first["refresh_token"])
    check(refreshed.get("access_token") not in (None, first["access_token"]),
          "the refresh returned no new access token")
    check(refreshed.get("refresh_token") not in (None, first["refresh_token"]),
          "the refresh returned no new refresh token (rotation)")
    refresh_out = {"new_access_token": True, "new_refresh_token": True,
                   "scope": refreshed.get("scope"), "id_token": None}
    if refreshed.get("id_token"):
        # OIDC Core 12.2: same iss, sub, aud; auth_time of the original authentication.
        _, again = validate_id_token(refreshed["id_token"], jwks, issuer, client_id, None,
                                     refreshed["access_token"], IDToken)
        check(again["sub"] == claims["sub"], "the refreshed ID token names another sub")
        refresh_out["id_token"] = again
    r = rp.get(meta["userinfo_endpoint"], timeout=TIMEOUT)
    check(r.status_code == 200, f"userinfo with the refreshed token answered {r.status_code}")
    refresh_out["userinfo_sub"] = r.json().get("sub")
    out["refresh"] = refresh_out
    session_tokens = refreshed

    step("single sign-on (prompt=none)")
    verifier2 = secrets.token_urlsafe(48)
    nonce2 = secrets.token_urlsafe(16)
    url2, state2 = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier2, nonce=nonce2, prompt="none")
    callback2, trail2 = browser.authorize(url2)
    params2 = callback_params(callback2, state2, issuer)
    check("code" in params2, f"prompt=none with a live session gave no code: {callback2}")
    check(len(trail2) == 2, f"prompt=none went through pages: {trail2}")
    sso = OAuth2Session(client_id=client_id, client_secret=client_secret, scope=scope,
                        redirect_uri=redirect_uri, code_challenge_method="S256")
    token2 = sso.fetch_token(meta["token_endpoint"], authorization_response=callback2,
                             state=state2, code_verifier=verifier2)
    _, claims2 = validate_id_token(token2["id_token"], jwks, issuer, client_id, nonce2,
                                   token2["access_token"], CodeIDToken)
    check(claims2["sub"] == claims["sub"], "single sign-on signed in someone else")
    out["sso"] = {"trail": trail2, "auth_time": claims2.get("auth_time"),
                  "sid": claims2.get("sid")}

    step("code reuse")
    again = requests.post(meta["token_endpoint"], timeout=TIMEOUT,
                          auth=(client_id, client_secret),
                          data={"grant_type": "authorization_code", "code": params2["code"],
                                "redirect_uri": redirect_uri, "code_verifier": verifier2})
    after = requests.get(meta["userinfo_endpoint"], timeout=TIMEOUT,
                         headers={"Authorization": "Bearer " + token2["access_token"]})
    rt2 = requests.post(meta["token_endpoint"], timeout=TIMEOUT,
                        auth=(client_id, client_secret),
                        data={"grant_type": "refresh_token",
                              "refresh_token": token2["refresh_token"]})
    out["code_reuse"] = {"second_use": token_error(again),
                         "userinfo_status_after": after.status_code,
                         "refresh_after": token_error(rt2)}

    step("RP-initiated logout")
    logout_state = secrets.token_urlsafe(12)
    r = browser.http.get(meta["end_session_endpoint"], allow_redirects=False, timeout=TIMEOUT,
                         params={"id_token_hint": first["id_token"],
                                 "post_logout_redirect_uri": post_logout,
                                 "state": logout_state})
    loc = r.headers.get("Location", "")
    check(r.status_code in (302, 303), f"logout answered {r.status_code}: {r.text[:300]}")
    lq = {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}
    check(loc.split("?")[0] == post_logout, f"logout redirected to {loc!r}")
    check(lq.get("state") == logout_state, f"logout redirect carries state {lq.get('state')!r}")
    out["logout"] = {"status": r.status_code, "location": loc, "state_echoed": True,
                     "cleared_cookies": sorted(
                         n for n, a in set_cookies(r).items()
                         if a.get("max-age") == "0" or a.get("value") == "")}

    step("after logout")
    r = requests.post(meta["token_endpoint"], timeout=TIMEOUT, auth=(client_id, client_secret),
                      data={"grant_type": "refresh_token",
                            "refresh_token": session_tokens["refresh_token"]})
    refresh_after = token_error(r)
    check(r.status_code != 200, "the refresh token still works after logout")
    u = requests.get(meta["userinfo_endpoint"], timeout=TIMEOUT,
                     headers={"Authorization": "Bearer " + session_tokens["access_token"]})
    verifier3 = secrets.token_urlsafe(48)
    url3, state3 = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier3,
        nonce=secrets.token_urlsafe(16), prompt="none")
    callback3, trail3 = browser.authorize(url3)
    params3 = callback_params(callback3, state3, issuer)
    check(params3.get("error") == "login_required",
          f"prompt=none after logout: {callback3}")
    check("code" not in params3, "prompt=none after logout still issued a code")
    out["after_logout"] = {
        "refresh": refresh_after,
        "userinfo_status": u.status_code,
        "prompt_none": {"error": params3.get("error"),
                        "error_description": params3.get("error_description"),
                        "state_matches": True, "iss": params3.get("iss"), "trail": trail3},
    }
    out["ok"] = True
    return out


def main():
    try:
        out = run()
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear report
        detail = str(e) if isinstance(e, Failure) else f"{type(e).__name__}: {e}"
        report = {"ok": False, "step": STEP, "error": detail}
        if not isinstance(e, Failure):
            report["traceback"] = traceback.format_exc()
        print(json.dumps(report))
        print(f"oidc_authlib: FAILED at {STEP}: {detail}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
