// A real browser against keymint's browser sign-in: playwright-core drives Debian's Chromium
// (headless, CHROMIUM_PATH, default /usr/bin/chromium).
//
//   node browser.mjs signin   the hosted login page in an OpenID Connect code flow: the
//                             browser opens a confidential client's authorization URL, is sent
//                             to /login, fills the form by its labels (first a wrong password),
//                             submits, allows the consent page if one is shown, and lands on the
//                             client's redirect URI (a listener this script runs) with a code
//                             and state; the script exchanges the code and verifies the ID token
//                             (jose). A second authorization in the same browser must show
//                             neither page (single sign-on); then RP-initiated logout lands on
//                             the post-logout URI, and the next authorization shows /login.
//                             Every page is watched for CSP violations (securitypolicyviolation
//                             events and console reports), scripts and third-party requests;
//                             a control (a script injected into the login page) shows that the
//                             watch sees a violation when there is one.
//   node browser.mjs cookie   cookie mode: a reverse proxy (cookie_app/proxy.mjs) serves
//                             cookie_app/ on /app/ and keymint on every other path, one origin;
//                             the page's own script signs in with ?mode=cookie, reads /auth/me,
//                             refreshes, logs out, tries requests without (or with a wrong or
//                             planted) X-CSRF-Token, and reports what script could see.
//
// Protocol (stdin/stdout, one JSON object a line): the script first prints
// {"listening": ORIGIN} (the redirect listener, or the proxy), then reads one line of
// configuration:
//   signin: {"issuer", "client_id", "client_secret", "redirect_uri", "username", "password",
//            "wrong_password"?, "post_logout_redirect_uri"?, "scope"?}
//   cookie: {"upstream" (keymint's URL), "username", "password"}
// and finally prints {"ok": true, ...what it saw...} and exits 0, or {"ok": false, "step",
// "error"} (also on stderr) and exits 1.
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import readline from 'node:readline'
import { chromium } from 'playwright-core'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { startProxy } from './cookie_app/proxy.mjs'

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const TIMEOUT_MS = 20_000
let STEP = 'start'

class Failure extends Error {}

function check(cond, message) {
  if (!cond) throw new Failure(message)
}

const b64url = (buf) => Buffer.from(buf).toString('base64url')

async function readConfig() {
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    if (line.trim()) {
      rl.close()
      return JSON.parse(line)
    }
  }
  throw new Failure('stdin closed before the configuration line')
}

async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
    timeout: 60_000,
  })
}

/** Watch a browser context: console messages, page errors, CSP violations (as events, via
 *  an init script and a binding that survive navigations), every request's URL. */
async function watch(context) {
  const seen = { console: [], page_errors: [], violations: [], requests: [], navigations: [], documents: [] }
  await context.exposeBinding('__kmReportViolation', ({ page }, v) => {
    seen.violations.push({ ...v, page: page?.url() ?? null })
  })
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const v = {
        directive: e.violatedDirective,
        effective: e.effectiveDirective,
        blocked: e.blockedURI,
        disposition: e.disposition,
        document: e.documentURI,
        sample: e.sample,
      }
      window.__kmViolations = (window.__kmViolations || []).concat([v])
      window.__kmReportViolation(v)
    })
  })
  context.on('request', (r) => seen.requests.push(r.url()))
  // Every document the browser loaded, with the Origin it sent (what a server's CSRF check sees).
  context.on('response', (r) => {
    const q = r.request()
    if (q.isNavigationRequest()) {
      const origin = q.method() === 'GET' ? '' : ` (Origin: ${q.headers().origin ?? 'none'})`
      seen.documents.push(`${q.method()} ${new URL(r.url()).pathname} ${r.status()}${origin}`)
    }
  })
  context.on('page', (page) => {
    page.on('console', (m) => seen.console.push({ type: m.type(), text: m.text(), page: page.url() }))
    page.on('pageerror', (e) => seen.page_errors.push(String(e)))
    page.on('framenavigated', (f) => {
      if (f === page.mainFrame()) seen.navigations.push(f.url())
    })
  })
  return seen
}

/** Console messages that report a CSP violation (Chromium logs each one). */
const cspConsole = (seen) => seen.console.filter((m) => /Content Security Policy/i.test(m.text))

/** `e`, with the CSP reports, page errors, documents (and the Origin each POST sent) and the
 *  page's alert seen so far in its message: a blocked navigation (e.g. a form-action directive
 *  refusing the redirect after the login form) otherwise shows only as net::ERR_ABORTED, and
 *  a refused form only as a wait that timed out. */
async function withReports(e, seen, page) {
  if (!seen) return e
  // A report can trail the failure it explains by a few milliseconds (failure path only).
  await new Promise((resolve) => setTimeout(resolve, 500))
  const reports = [...seen.violations, ...cspConsole(seen).map((m) => m.text), ...seen.page_errors]
  const documents = seen.documents.slice(-6)
  const alert = page ? await page.locator('[role=alert]').allInnerTexts().catch(() => []) : []
  const hint = seen.violations.some((v) => v.effective === 'form-action')
    ? " (Chromium applies form-action to every redirect that follows the form's POST, so the login page's CSP must allow the redirect to the client's redirect_uri)"
    : ''
  const f = new Failure(`${e instanceof Failure ? '' : e.name + ': '}${e.message.split('\n')[0]}; CSP reports and page errors so far: ${JSON.stringify(reports)}${hint}; the last documents: ${JSON.stringify(documents)}; the page says: ${JSON.stringify(alert)}`)
  f.stack = e.stack
  return f
}

// ---- (a) the hosted login page in an OpenID Connect code flow

async function redirectListener() {
  const hits = []
  const server = http.createServer((req, res) => {
    hits.push(req.url)
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'",
    })
    res.end('<!doctype html><title>client</title><p>signed in</p>')
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { origin: `http://127.0.0.1:${server.address().port}`, hits, close: () => server.close() }
}

async function signin() {
  STEP = 'redirect listener'
  const listener = await redirectListener()
  console.log(JSON.stringify({ listening: listener.origin }))
  const cfg = await readConfig()
  const issuer = cfg.issuer.replace(/\/$/, '')
  const redirectUri = cfg.redirect_uri ?? `${listener.origin}/cb`
  check(redirectUri.startsWith(listener.origin + '/'), `redirect_uri ${redirectUri} is not on this script's listener`)
  const out = { ok: false }

  STEP = 'discovery'
  const get = async (url) => (await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) })).json()
  const meta = await get(`${issuer}/.well-known/openid-configuration`)
  const jwks = await get(meta.jwks_uri)

  const authorizeUrl = (extra = {}) => {
    const verifier = b64url(randomBytes(32))
    const state = b64url(randomBytes(16))
    const nonce = b64url(randomBytes(16))
    const u = new URL(meta.authorization_endpoint)
    const params = {
      response_type: 'code',
      client_id: cfg.client_id,
      redirect_uri: redirectUri,
      scope: cfg.scope ?? 'openid profile email',
      state,
      nonce,
      code_challenge: b64url(createHash('sha256').update(verifier).digest()),
      code_challenge_method: 'S256',
      ...extra,
    }
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v)
    return { url: u.href, verifier, state, nonce }
  }

  STEP = 'launch chromium'
  const browser = await launch()
  let seen = null
  let page = null
  try {
    out.browser_version = browser.version()
    const context = await browser.newContext()
    context.setDefaultTimeout(TIMEOUT_MS)
    context.setDefaultNavigationTimeout(TIMEOUT_MS)
    seen = await watch(context)
    page = await context.newPage()
    const responses = []
    page.on('response', (r) => {
      if (r.request().isNavigationRequest()) responses.push(r)
    })

    STEP = 'open the authorization URL'
    const a = authorizeUrl()
    await page.goto(a.url)
    const onLogin = new URL(page.url())
    check(onLogin.origin === issuer && onLogin.pathname === '/login', `the browser is on ${page.url()}, not keymint's /login`)
    const loginResponse = responses.findLast((r) => new URL(r.url()).pathname === '/login')
    check(loginResponse, 'no navigation response for /login')
    const html = await loginResponse.text()
    const loginPage = {
      status: loginResponse.status(),
      csp: loginResponse.headers()['content-security-policy'] ?? null,
      x_frame_options: loginResponse.headers()['x-frame-options'] ?? null,
      script_elements: await page.locator('script').count(),
      script_in_html: /<script\b/i.test(html),
      title: await page.title(),
      form: await page.locator('form').evaluateAll((forms) =>
        forms.map((f) => ({ action: f.getAttribute('action'), method: (f.getAttribute('method') || 'get').toLowerCase() })),
      ),
    }
    out.login_page = loginPage
    check(loginPage.script_elements === 0 && !loginPage.script_in_html, 'the login page has a <script>')

    STEP = 'fill the login form by its labels (a wrong password first)'
    const fill = async (password) => {
      const user = page.getByLabel(/user/i)
      const pass = page.getByLabel(/password/i)
      check((await user.count()) === 1, `${await user.count()} fields labelled like "user"`)
      check((await pass.count()) === 1, `${await pass.count()} fields labelled like "password"`)
      check((await user.getAttribute('name')) === 'username', 'the field labelled "user" is not the username input')
      check((await pass.getAttribute('type')) === 'password', 'the field labelled "password" is not a password input')
      await user.fill(cfg.username)
      await pass.fill(password)
      const submit = page.locator('form button[type=submit], form input[type=submit], form button:not([type])')
      check((await submit.count()) >= 1, 'the login form has no submit button')
      const [response] = await Promise.all([page.waitForNavigation(), submit.first().click()])
      return response
    }
    if (cfg.wrong_password) {
      const wrong = await fill(cfg.wrong_password)
      const body = await page.locator('body').innerText()
      out.wrong_password = {
        status: wrong?.status() ?? null,
        url_path: new URL(page.url()).pathname,
        form_again: (await page.getByLabel(/password/i).count()) === 1,
        mentions_username: body.includes(cfg.username),
        text: body.slice(0, 400),
      }
      if (!out.wrong_password.form_again) await page.goto(a.url)
    }

    STEP = 'sign in'
    let signedIn = await fill(cfg.password)
    const consentForm = page.locator('form[action="/oauth/consent"]')
    if (new URL(page.url()).origin === issuer && (await consentForm.count()) === 1) {
      STEP = 'consent'
      out.consent = {
        status: signedIn?.status() ?? null,
        script_elements: await page.locator('script').count(),
        buttons: await consentForm.locator('button').allInnerTexts(),
      }
      const allow = consentForm.getByRole('button', { name: /allow/i })
      ;[signedIn] = await Promise.all([page.waitForNavigation(), allow.click()])
    }
    check(page.url().startsWith(redirectUri), `signing in ended on ${new URL(page.url()).pathname} with ${signedIn?.status()}, not at the redirect URI`)
    const landed = new URL(page.url())
    check(landed.searchParams.get('state') === a.state, `landed with state ${landed.searchParams.get('state')}`)
    const code = landed.searchParams.get('code')
    check(code, `landed on ${page.url()} without a code`)
    out.callback = {
      path: landed.pathname,
      state_matches: true,
      iss: landed.searchParams.get('iss'),
      error: landed.searchParams.get('error'),
      listener_hits: listener.hits.length,
    }
    out.cookies = (await context.cookies(issuer)).map((c) => ({
      name: c.name,
      path: c.path,
      httpOnly: c.httpOnly,
      secure: c.secure,
      sameSite: c.sameSite,
      session: c.expires === -1,
    }))

    STEP = 'exchange the code'
    const tokenRes = await fetch(meta.token_endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(cfg.client_id)}:${encodeURIComponent(cfg.client_secret)}`).toString('base64'),
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: a.verifier }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    })
    const tokens = await tokenRes.json()
    check(tokenRes.status === 200, `the token endpoint answered ${tokenRes.status}: ${JSON.stringify(tokens)}`)
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token, createLocalJWKSet(jwks), {
      issuer,
      audience: cfg.client_id,
      algorithms: ['RS256'],
      typ: 'JWT',
    })
    check(payload.nonce === a.nonce, 'the ID token carries another nonce')
    out.id_token = { header: protectedHeader, claims: payload }

    STEP = 'single sign-on in the same browser'
    const navBefore = seen.navigations.length
    const docsBefore = seen.documents.length
    const b = authorizeUrl()
    await page.goto(b.url)
    const again = new URL(page.url())
    out.sso = {
      state_matches: again.searchParams.get('state') === b.state,
      has_code: again.searchParams.has('code'),
      visited_login: seen.navigations.slice(navBefore).some((u) => new URL(u).pathname === '/login'),
      documents: seen.documents.slice(docsBefore),
    }

    if (cfg.post_logout_redirect_uri) {
      STEP = 'RP-initiated logout in the browser'
      const logoutState = b64url(randomBytes(12))
      const end = new URL(meta.end_session_endpoint)
      end.searchParams.set('id_token_hint', tokens.id_token)
      end.searchParams.set('post_logout_redirect_uri', cfg.post_logout_redirect_uri)
      end.searchParams.set('state', logoutState)
      const docs = seen.documents.length
      await page.goto(end.href)
      const back = new URL(page.url())
      out.logout = {
        landed: back.href.split('?')[0] === cfg.post_logout_redirect_uri,
        state_matches: back.searchParams.get('state') === logoutState,
        documents: seen.documents.slice(docs),
        cookies_after: (await context.cookies(issuer)).map((c) => c.name).sort(),
      }
      STEP = 'after logout'
      const c = authorizeUrl()
      await page.goto(c.url)
      out.after_logout = { path: new URL(page.url()).pathname, login_form: (await page.locator('form[action="/login"]').count()) === 1 }
    }

    STEP = 'watch the pages'
    const origins = new Set([new URL(issuer).origin, listener.origin])
    const thirdParty = seen.requests.filter((u) => {
      const p = new URL(u)
      return !(p.protocol === 'data:' || origins.has(p.origin))
    })
    out.requests = { count: seen.requests.length, third_party: thirdParty }
    out.csp_violations = [...seen.violations]
    out.csp_console = cspConsole(seen)
    out.page_errors = [...seen.page_errors]
    out.console_errors = seen.console.filter((m) => m.type === 'error')

    STEP = 'CSP control: a script injected into the login page'
    const control = await context.newPage()
    const before = seen.violations.length
    const beforeConsole = cspConsole(seen).length
    await control.goto(`${issuer}/login?return_to=%2F`)
    const ran = await control.evaluate(() => {
      const s = document.createElement('script')
      s.textContent = 'window.__kmInjectedRan = true'
      document.head.appendChild(s)
      return window.__kmInjectedRan === true
    })
    // The event is dispatched asynchronously; wait for it (bounded), then for its binding call.
    await control.waitForFunction(() => (window.__kmViolations || []).length > 0, null, { timeout: 5_000 }).catch(() => {})
    const inPage = await control.evaluate(() => (window.__kmViolations || []).length)
    out.csp_control = {
      injected_script_ran: ran,
      events_in_page: inPage,
      violations: seen.violations.slice(before),
      console: cspConsole(seen).slice(beforeConsole),
    }
    await control.close()

    check(out.csp_violations.length === 0, `CSP violations: ${JSON.stringify(out.csp_violations)}`)
    check(out.csp_console.length === 0, `CSP reports on the console: ${JSON.stringify(out.csp_console)}`)
    check(thirdParty.length === 0, `third-party requests: ${thirdParty.join(', ')}`)
    check(out.page_errors.length === 0, `page errors: ${out.page_errors.join('; ')}`)
    check(!ran, 'the login page let an injected inline script run (no effective CSP)')
    check(inPage > 0, 'the injected script was blocked but no securitypolicyviolation event arrived')
    await context.close()
  } catch (e) {
    throw await withReports(e, seen, page)
  } finally {
    await browser.close()
    listener.close()
  }
  out.ok = true
  return out
}

// ---- (b) cookie mode, from the page's own script

async function cookieMode() {
  STEP = 'reverse proxy'
  const proxy = await startProxy()
  console.log(JSON.stringify({ listening: proxy.origin }))
  const cfg = await readConfig()
  proxy.upstream = cfg.upstream
  const out = { ok: false, origin: proxy.origin }

  STEP = 'launch chromium'
  const browser = await launch()
  let seen = null
  let page = null
  try {
    out.browser_version = browser.version()
    const context = await browser.newContext()
    context.setDefaultTimeout(TIMEOUT_MS)
    seen = await watch(context)
    page = await context.newPage()

    STEP = 'open the app'
    await page.goto(`${proxy.origin}/app/`)
    await page.getByLabel('Username').fill(cfg.username)
    await page.getByLabel('Password').fill(cfg.password)
    await page.getByRole('button', { name: 'Run the checks' }).click()

    STEP = "the page's checks"
    const result = page.locator('#result')
    await page.waitForFunction(() => ['done', 'failed'].includes(document.getElementById('result').dataset.state), null, {
      timeout: TIMEOUT_MS,
    })
    const state = await result.getAttribute('data-state')
    const report = JSON.parse(await result.textContent())
    check(state === 'done', `the page's script failed: ${report.error}`)
    out.page = report
    out.browser_cookies_after = (await context.cookies(proxy.origin)).map((c) => c.name).sort()
    out.proxied = proxy.log
    out.csp_violations = seen.violations
    out.csp_console = cspConsole(seen)
    out.page_errors = seen.page_errors
    const seenByScript = report.facts.cookies_seen_by_script
    check(!seenByScript.some((n) => /km_access|km_refresh/.test(n)), `script saw ${seenByScript.join(', ')}`)
    check(seen.violations.length === 0, `CSP violations on the app: ${JSON.stringify(seen.violations)}`)
    check(seen.page_errors.length === 0, `page errors: ${seen.page_errors.join('; ')}`)
    await context.close()
  } catch (e) {
    throw await withReports(e, seen, page)
  } finally {
    await browser.close()
    await proxy.close()
  }
  out.ok = true
  return out
}

const mode = process.argv[2]
try {
  let out
  if (mode === 'signin') out = await signin()
  else if (mode === 'cookie') out = await cookieMode()
  else throw new Failure(`usage: node browser.mjs signin|cookie (got ${mode})`)
  console.log(JSON.stringify(out))
  process.exit(0)
} catch (e) {
  const detail = e instanceof Failure ? e.message : `${e.name}: ${e.message}`
  console.log(JSON.stringify({ ok: false, step: STEP, error: detail, stack: e instanceof Failure ? undefined : e.stack }))
  console.error(`browser: FAILED at ${STEP}: ${detail}`)
  process.exit(1)
}
