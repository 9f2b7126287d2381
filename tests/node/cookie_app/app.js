// The cookie-mode test app's own script (no framework, no inline script: the page's CSP is
// script-src 'self'). On submit it signs in with keymint's cookie mode on its own origin and
// goes through a session the way a first-party web app would, recording what JavaScript can
// and cannot see. The results go into #result as JSON (data-state="done"), where
// tests/node/browser.mjs reads them; the page itself judges nothing.
'use strict'

const TOKEN_IN_TEXT = /access_token|refresh_token|eyJ[A-Za-z0-9_-]{8,}/

function cookieNames() {
  return document.cookie
    .split(';')
    .map((c) => c.trim().split('=')[0])
    .filter(Boolean)
    .sort()
}

function cookie(name) {
  for (const c of document.cookie.split(';')) {
    const [k, ...v] = c.trim().split('=')
    if (k === name) return v.join('=')
  }
  return null
}

// What the Cookie Store API shows script (it hides HttpOnly cookies too), when present.
async function cookieStoreNames() {
  if (!('cookieStore' in window)) return null
  try {
    return (await window.cookieStore.getAll()).map((c) => c.name).sort()
  } catch (e) {
    return ['error: ' + e.name]
  }
}

async function run(username, password) {
  const steps = []
  const seen = new Set()
  const call = async (label, method, path, opts = {}) => {
    const headers = {}
    if (opts.body) headers['content-type'] = 'application/json'
    if (opts.csrf !== undefined) headers['x-csrf-token'] = opts.csrf
    const r = await fetch(path, {
      method,
      headers,
      body: opts.body ? JSON.stringify(opts.body) : undefined,
      credentials: 'same-origin',
      cache: 'no-store',
    })
    const text = await r.text()
    let json = null
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON (e.g. an empty 204)
    }
    const names = cookieNames()
    names.forEach((n) => seen.add(n))
    const store = await cookieStoreNames()
    if (store) store.forEach((n) => seen.add(n))
    const step = {
      label,
      method,
      path,
      sent_csrf: opts.csrf !== undefined,
      status: r.status,
      keys: json && typeof json === 'object' ? Object.keys(json).sort() : null,
      error: json && typeof json === 'object' ? (json.error ?? null) : null,
      tokens_in_body: TOKEN_IN_TEXT.test(text),
      document_cookie: names,
      cookie_store: store,
    }
    steps.push(step)
    return { step, json }
  }

  const login = await call('login', 'POST', '/auth/login?mode=cookie', { body: { username, password } })
  const csrf = cookie('km_csrf')
  const facts = {
    login_body_csrf_equals_cookie: login.json !== null && login.json.csrf_token === csrf && csrf !== null,
    login_body: login.json && {
      token_type: login.json.token_type,
      expires_in: login.json.expires_in,
      refresh_expires_in: login.json.refresh_expires_in,
    },
  }
  const me = await call('me', 'GET', '/auth/me')
  facts.me = me.json
  await call('refresh without X-CSRF-Token', 'POST', '/auth/refresh?mode=cookie')
  await call('refresh with a wrong X-CSRF-Token', 'POST', '/auth/refresh?mode=cookie', { csrf: 'x' + csrf })
  // A planted double-submit pair (cookie and header agree) must still fail: the value is
  // bound to the session.
  document.cookie = 'km_csrf=planted-by-script; path=/; samesite=strict'
  facts.planted_cookie_visible = cookie('km_csrf') === 'planted-by-script'
  await call('refresh with a planted km_csrf pair', 'POST', '/auth/refresh?mode=cookie', { csrf: 'planted-by-script' })
  document.cookie = `km_csrf=${csrf}; path=/; samesite=strict`
  const refreshed = await call('refresh', 'POST', '/auth/refresh?mode=cookie', { csrf })
  const csrf2 = cookie('km_csrf')
  facts.refresh_body_csrf_equals_cookie = refreshed.json !== null && refreshed.json.csrf_token === csrf2 && csrf2 !== null
  const me2 = await call('me after refresh', 'GET', '/auth/me')
  facts.me_after_refresh = me2.json
  await call('logout without X-CSRF-Token', 'POST', '/auth/logout?mode=cookie')
  await call('logout', 'POST', '/auth/logout?mode=cookie', { csrf: csrf2 })
  await call('me after logout', 'GET', '/auth/me')
  facts.cookies_seen_by_script = [...seen].sort()
  facts.cookies_after_logout = cookieNames()
  return { steps, facts }
}

const form = document.getElementById('signin')
const result = document.getElementById('result')
form.addEventListener('submit', (event) => {
  event.preventDefault()
  result.dataset.state = 'running'
  run(form.elements.username.value, form.elements.password.value).then(
    (out) => {
      result.textContent = JSON.stringify(out)
      result.dataset.state = 'done'
    },
    (e) => {
      result.textContent = JSON.stringify({ error: `${e.name}: ${e.message}` })
      result.dataset.state = 'failed'
    },
  )
})
