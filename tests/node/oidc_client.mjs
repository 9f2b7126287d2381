// An OpenID Connect relying party keymint did not write: openid-client (v6) runs the code
// flow as a PUBLIC client (no secret: token_endpoint_auth_method "none", PKCE S256).
//
// The browser is node's fetch with a small cookie jar, following no redirect on its own: it
// signs in through keymint's hosted login page (GET /login, POST /login with the csrf and
// return_to hidden inputs) and stops at the redirect to the client. openid-client then does
// everything an RP does: discovery, PKCE, the authorization response checks (state, iss per
// RFC 9207), the code exchange with the ID token's signature checked against the JWKS
// (enableNonRepudiationChecks) and its claims (iss, aud, exp, iat, nonce, azp), UserInfo,
// refresh, and RP-initiated logout; after logout the refresh token and prompt=none must fail.
//
// Configuration (environment): OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_REDIRECT_URI,
// OIDC_POST_LOGOUT_REDIRECT_URI, OIDC_USERNAME, OIDC_PASSWORD, optional OIDC_SCOPE
// (default "openid profile email").
//
// Prints one JSON object on stdout: {"ok": true, ...what was checked and seen...}, exit 0; on
// any failure {"ok": false, "step", "error"} on stdout, the same on stderr, exit 1.
import { createHash } from 'node:crypto'
import * as client from 'openid-client'

const TIMEOUT_MS = 15_000
let STEP = 'start'

class Failure extends Error {}

function check(cond, message) {
  if (!cond) throw new Failure(message)
}

function env(name, fallback) {
  const v = process.env[name] ?? fallback
  if (v === undefined) throw new Failure(`the environment variable ${name} is not set`)
  return v
}

// ---- the browser: fetch, a cookie jar for one host, one redirect hop at a time.

function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
    const k = e.toLowerCase()
    if (k[0] === '#') {
      return String.fromCodePoint(k[1] === 'x' ? parseInt(k.slice(2), 16) : parseInt(k.slice(1), 10))
    }
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[k]
  })
}

function attributes(tag) {
  const out = {}
  for (const m of tag.matchAll(/([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g)) {
    if (m.index === 0) continue // the tag name itself
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '')
  }
  return out
}

/** The forms of a page: {action, method, inputs: [{name, type, value, id}], buttons}. */
function forms(html) {
  const out = []
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attributes('form ' + m[1])
    const inputs = []
    const buttons = []
    for (const t of m[2].matchAll(/<(input|button)\b([^>]*)>/gi)) {
      const f = attributes(t[1] + ' ' + t[2])
      const type = (f.type ?? (t[1].toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase()
      const field = { name: f.name, type, value: f.value ?? '', id: f.id }
      if (type === 'submit') buttons.push(field)
      else inputs.push(field)
    }
    out.push({ action: a.action ?? '', method: (a.method ?? 'get').toLowerCase(), inputs, buttons, html: m[2] })
  }
  return out
}

function labelled(form, field) {
  if (field.id && new RegExp(`<label\\b[^>]*\\bfor\\s*=\\s*["']?${field.id}["'\\s>]`, 'i').test(form.html)) return true
  // Or the input nested in a <label>.
  for (const m of form.html.matchAll(/<label\b[^>]*>([\s\S]*?)<\/label>/gi)) {
    if (new RegExp(`\\bname\\s*=\\s*["']?${field.name}["'\\s>/]`, 'i').test(m[1])) return true
  }
  return false
}

function setCookies(res) {
  const out = {}
  for (const line of res.headers.getSetCookie()) {
    const [first, ...rest] = line.split(';').map((p) => p.trim())
    const i = first.indexOf('=')
    const attrs = { value: first.slice(i + 1) }
    for (const p of rest) {
      const j = p.indexOf('=')
      attrs[(j < 0 ? p : p.slice(0, j)).toLowerCase()] = j < 0 ? true : p.slice(j + 1)
    }
    out[first.slice(0, i)] = attrs
  }
  return out
}

class Browser {
  constructor(issuer, redirectUri, username, password) {
    Object.assign(this, { issuer, redirectUri, username, password })
    this.jar = new Map()
    this.loginPage = null
    this.ssoCookie = null
  }

  async hop(method, url, trail, form) {
    const headers = {}
    if (this.jar.size) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
    let body
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(form).toString()
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS) })
    for (const [name, a] of Object.entries(setCookies(res))) {
      if (a['max-age'] === '0' || a.value === '') this.jar.delete(name)
      else this.jar.set(name, a.value)
    }
    trail.push({ method, path: new URL(url).pathname, status: res.status })
    return { res, url, text: await res.text() }
  }

  /** Follow an authorization request through login (and consent) until keymint redirects
   *  to the client; returns [the redirect's URL, the trail of hops]. */
  async authorize(url) {
    const trail = []
    let page = await this.hop('GET', url, trail)
    for (let i = 0; i < 12; i++) {
      const { res } = page
      if ([301, 302, 303, 307, 308].includes(res.status)) {
        const loc = res.headers.get('location')
        check(loc, `${res.status} from ${page.url} without a Location`)
        const target = new URL(loc, page.url).href
        if (target.split('?')[0] === this.redirectUri) {
          trail.push({ redirect: 'client' })
          return [target, trail]
        }
        check(target.startsWith(this.issuer + '/'), `keymint redirected the browser to a third party: ${target}`)
        page = await this.hop('GET', target, trail)
        continue
      }
      check(res.status === 200, `${new URL(page.url).pathname} answered ${res.status}: ${page.text.slice(0, 300)}`)
      const all = forms(page.text)
      const login = all.find((f) => new URL(f.action, page.url).pathname === '/login')
      const consent = all.find((f) => new URL(f.action, page.url).pathname === '/oauth/consent')
      if (login) {
        page = await this.signIn(page, login, trail)
      } else if (consent) {
        trail[trail.length - 1].consent = true
        const field = (n) => consent.inputs.find((f) => f.name === n)?.value
        page = await this.hop('POST', new URL(consent.action, page.url).href, trail, {
          request: field('request'), csrf: field('csrf'), decision: 'allow',
        })
      } else {
        throw new Failure(`${new URL(page.url).pathname}: neither the login nor the consent form: ${page.text.slice(0, 300)}`)
      }
    }
    throw new Failure('more than 12 hops between the authorization request and the client')
  }

  async signIn(page, form, trail) {
    check(form.method === 'post', `the login form's method is ${form.method}`)
    const field = (n) => form.inputs.find((f) => f.name === n)
    for (const n of ['username', 'password', 'csrf', 'return_to']) check(field(n), `the login form has no input named ${n}`)
    check(field('password').type === 'password', `the password input has type ${field('password').type}`)
    for (const n of ['username', 'password']) check(labelled(form, field(n)), `the ${n} input has no <label>`)
    check(this.jar.has('km_login'), 'GET /login set no km_login cookie')
    const returnTo = field('return_to').value
    check(returnTo.startsWith('/oauth/authorize?'), `return_to is not the relative authorization request: ${returnTo}`)
    this.loginPage = {
      path: new URL(page.url).pathname,
      csp: page.res.headers.get('content-security-policy'),
      scripts: (page.text.match(/<script\b/gi) ?? []).length,
      return_to: returnTo,
    }
    const posted = await this.hop('POST', new URL(form.action, page.url).href, trail, {
      username: this.username, password: this.password, csrf: field('csrf').value, return_to: returnTo,
    })
    check(posted.res.status === 303, `POST /login answered ${posted.res.status}: ${posted.text.slice(0, 300)}`)
    const sso = setCookies(posted.res).km_sso
    check(sso, 'POST /login set no km_sso cookie')
    const { value, ...attrs } = sso
    this.ssoCookie = attrs
    check(posted.res.headers.get('location') === returnTo, `POST /login redirected to ${posted.res.headers.get('location')}, not return_to`)
    return posted
  }
}

async function refusal(promise) {
  try {
    await promise
  } catch (e) {
    const challenge = Array.isArray(e.cause) ? e.cause[0]?.parameters?.error ?? null : null
    return {
      name: e.name,
      message: e.message,
      code: e.code ?? null,
      error: e.error ?? challenge,
      status: e.status ?? e.response?.status ?? null,
    }
  }
  return null
}

function atHash(accessToken) {
  return createHash('sha256').update(accessToken, 'ascii').digest().subarray(0, 16).toString('base64url')
}

function decodeHeader(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString())
}

async function run() {
  const issuer = env('OIDC_ISSUER').replace(/\/$/, '')
  const clientId = env('OIDC_CLIENT_ID')
  const redirectUri = env('OIDC_REDIRECT_URI')
  const postLogout = env('OIDC_POST_LOGOUT_REDIRECT_URI')
  const username = env('OIDC_USERNAME')
  const password = env('OIDC_PASSWORD')
  const scope = env('OIDC_SCOPE', 'openid profile email')
  const out = { ok: false }

  STEP = 'discovery'
  const config = await client.discovery(new URL(issuer), clientId, { token_endpoint_auth_method: 'none' }, client.None(), {
    // A loopback test server over plain HTTP (openid-client refuses http:// otherwise), and
    // the ID token's signature checked against the JWKS, not only its claims.
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    timeout: TIMEOUT_MS / 1000,
  })
  const meta = config.serverMetadata()
  check(meta.issuer === issuer, `discovery names issuer ${meta.issuer}`)
  check(meta.code_challenge_methods_supported?.includes('S256'), 'discovery does not offer PKCE S256')
  check(meta.token_endpoint_auth_methods_supported?.includes('none'), 'discovery does not offer auth method none')
  out.discovery = {
    issuer: meta.issuer,
    authorization_endpoint: meta.authorization_endpoint,
    end_session_endpoint: meta.end_session_endpoint,
    token_endpoint_auth_methods_supported: meta.token_endpoint_auth_methods_supported,
    authorization_response_iss_parameter_supported: meta.authorization_response_iss_parameter_supported,
    supports_pkce: config.serverMetadata().supportsPKCE(),
  }
  const jwks = await (await fetch(meta.jwks_uri, { signal: AbortSignal.timeout(TIMEOUT_MS) })).json()
  const kids = jwks.keys.map((k) => k.kid)

  const browser = new Browser(issuer, redirectUri, username, password)
  const authorize = async (extra = {}) => {
    const verifier = client.randomPKCECodeVerifier()
    const challenge = await client.calculatePKCECodeChallenge(verifier)
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope, state, nonce, code_challenge: challenge, code_challenge_method: 'S256', ...extra,
    })
    check(url.searchParams.get('client_id') === clientId, 'the authorization URL names another client')
    const [callback, trail] = await browser.authorize(url.href)
    return { verifier, state, nonce, callback: new URL(callback), trail }
  }

  STEP = 'authorization (hosted login)'
  const a = await authorize()
  check(browser.loginPage, 'the first authorization showed no login page')
  out.login = { trail: a.trail, page: browser.loginPage, sso_cookie: browser.ssoCookie, consent_shown: a.trail.some((h) => h.consent) }

  STEP = 'authorization response checks'
  const checks = { pkceCodeVerifier: a.verifier, expectedNonce: a.nonce, expectedState: a.state, idTokenExpected: true }
  // Both refusals happen before the code is sent anywhere, so the code stays unused.
  const wrongIss = new URL(a.callback)
  wrongIss.searchParams.set('iss', issuer + '/x')
  const rejects = {
    wrong_state: await refusal(client.authorizationCodeGrant(config, a.callback, { ...checks, expectedState: 'x' + a.state })),
    wrong_iss: await refusal(client.authorizationCodeGrant(config, wrongIss, checks)),
  }
  for (const [what, r] of Object.entries(rejects)) check(r, `openid-client accepted an authorization response with a ${what}`)

  STEP = 'token (authorization_code, public client)'
  const tokens = await client.authorizationCodeGrant(config, a.callback, checks)
  const claims = tokens.claims()
  check(claims, 'the token response has no ID token')
  check(typeof tokens.refresh_token === 'string', 'the token response has no refresh_token')
  const header = decodeHeader(tokens.id_token)
  check(header.alg === 'RS256' && header.typ === 'JWT', `ID token header ${JSON.stringify(header)}`)
  check(kids.includes(header.kid), `ID token kid ${header.kid} is not in the JWKS`)
  check(claims.at_hash === atHash(tokens.access_token), "the ID token's at_hash does not match the access token")
  out.tokens = {
    token_type: tokens.token_type,
    scope: tokens.scope,
    expires_in: tokens.expires_in,
    has_refresh_token: true,
    keys: Object.keys(tokens).sort(),
  }
  out.callback = { iss: a.callback.searchParams.get('iss'), state_matches: true, rejects }
  out.id_token = { header, claims, validated: true }

  STEP = 'userinfo'
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  out.userinfo = userinfo
  // The library checks that sub matches: another expected subject must be refused.
  out.userinfo_wrong_subject = await refusal(client.fetchUserInfo(config, tokens.access_token, claims.sub + 'x'))
  check(out.userinfo_wrong_subject, 'fetchUserInfo accepted a response for another subject')

  STEP = 'refresh (public client)'
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  check(refreshed.access_token && refreshed.access_token !== tokens.access_token, 'the refresh gave no new access token')
  check(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token, 'the refresh gave no new refresh token')
  const afterRefresh = await client.fetchUserInfo(config, refreshed.access_token, claims.sub)
  out.refresh = {
    new_access_token: true,
    new_refresh_token: true,
    scope: refreshed.scope,
    id_token: refreshed.id_token ? refreshed.claims() : null,
    userinfo_sub: afterRefresh.sub,
  }

  STEP = 'single sign-on (prompt=none)'
  const b = await authorize({ prompt: 'none' })
  check(b.trail.length === 2, `prompt=none with a live session went through pages: ${JSON.stringify(b.trail)}`)
  const tokens2 = await client.authorizationCodeGrant(config, b.callback, {
    pkceCodeVerifier: b.verifier, expectedNonce: b.nonce, expectedState: b.state, idTokenExpected: true,
  })
  check(tokens2.claims().sub === claims.sub, 'single sign-on signed in someone else')
  out.sso = { trail: b.trail, auth_time: tokens2.claims().auth_time, sid: tokens2.claims().sid }

  STEP = 'RP-initiated logout'
  const logoutState = client.randomState()
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token, post_logout_redirect_uri: postLogout, state: logoutState,
  })
  const trail = []
  const { res } = await browser.hop('GET', endSession.href, trail)
  check([302, 303].includes(res.status), `logout answered ${res.status}`)
  const loc = new URL(res.headers.get('location') ?? '', endSession)
  check(loc.href.split('?')[0] === postLogout, `logout redirected to ${loc.href}`)
  check(loc.searchParams.get('state') === logoutState, `logout redirect carries state ${loc.searchParams.get('state')}`)
  out.logout = { status: res.status, location: loc.href, state_echoed: true, end_session_url: endSession.pathname }

  STEP = 'after logout'
  const refreshAfter = await refusal(client.refreshTokenGrant(config, refreshed.refresh_token))
  check(refreshAfter, 'the refresh token still works after logout')
  const userinfoAfter = await refusal(client.fetchUserInfo(config, refreshed.access_token, claims.sub))
  const c = await authorize({ prompt: 'none' })
  const promptNone = await refusal(client.authorizationCodeGrant(config, c.callback, {
    pkceCodeVerifier: c.verifier, expectedNonce: c.nonce, expectedState: c.state,
  }))
  check(promptNone?.error === 'login_required', `prompt=none after logout: ${c.callback.href}`)
  out.after_logout = {
    refresh: refreshAfter,
    userinfo: userinfoAfter,
    prompt_none: { ...promptNone, iss: c.callback.searchParams.get('iss'), state: c.callback.searchParams.get('state') === c.state },
  }
  out.ok = true
  return out
}

try {
  console.log(JSON.stringify(await run()))
} catch (e) {
  const detail = e instanceof Failure ? e.message : `${e.name}: ${e.message}${e.code ? ` (${e.code})` : ''}${e.error ? ` error=${e.error}` : ''}`
  console.log(JSON.stringify({ ok: false, step: STEP, error: detail, stack: e instanceof Failure ? undefined : e.stack }))
  console.error(`oidc_client: FAILED at ${STEP}: ${detail}`)
  process.exitCode = 1
}
