// A same-origin reverse proxy for the cookie-mode test app: /app/* is served from this
// directory (with a strict CSP of its own), every other path goes to keymint unchanged. So
// the app and keymint's /auth/* share one origin, as cookie mode expects ("a first-party web
// app served on keymint's origin or behind the same reverse proxy").
//
// Used by tests/node/browser.mjs (startProxy), or alone for a manual look:
//   node tests/node/cookie_app/proxy.mjs http://127.0.0.1:8080 [127.0.0.1:3000]
// (keymint then needs KEYMINT_CORS_ORIGINS=<the proxy's origin>, as the browser's Origin
// header names the proxy).
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

const APP_DIR = path.dirname(fileURLToPath(import.meta.url))
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' }
const APP_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
// Hop-by-hop headers (RFC 9110 section 7.6.1) a proxy must not forward.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

/**
 * Start the proxy on `bind` ("127.0.0.1:0" by default). `upstream` may be set later
 * (`proxy.upstream = ...`), before the first proxied request. Every proxied exchange is
 * recorded in `proxy.log`: method, path, status, the names of the cookies the browser sent,
 * whether it sent X-CSRF-Token, its Origin, and the Set-Cookie headers keymint answered
 * (values replaced by fingerprints).
 */
export async function startProxy({ upstream = null, bind = '127.0.0.1:0' } = {}) {
  const state = { upstream, log: [] }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://proxy.invalid')
    if (url.pathname === '/app' || url.pathname.startsWith('/app/')) {
      serveApp(url.pathname, res)
      return
    }
    forward(state, req, res)
  })
  const [host, port] = bind.split(':')
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(Number(port), host, resolve)
  })
  const addr = server.address()
  return {
    origin: `http://${addr.address}:${addr.port}`,
    get upstream() {
      return state.upstream
    },
    set upstream(u) {
      state.upstream = u
    },
    log: state.log,
    close: () => new Promise((resolve) => server.close(resolve)),
    server,
  }
}

async function serveApp(pathname, res) {
  const name = pathname === '/app' || pathname === '/app/' ? 'index.html' : pathname.slice('/app/'.length)
  // Only the files of this directory, by plain name.
  if (!/^[a-z0-9_-]+\.(html|js)$/i.test(name)) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
    return
  }
  try {
    const body = await readFile(path.join(APP_DIR, name))
    res.writeHead(200, {
      'content-type': TYPES[path.extname(name)],
      'content-security-policy': APP_CSP,
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    })
    res.end(body)
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
  }
}

/** A Set-Cookie line with its value replaced by a fingerprint (empty stays empty), so the
 *  log shows names, attributes and rotation without carrying tokens. */
export function redact(line) {
  const semi = line.indexOf(';')
  const pair = semi < 0 ? line : line.slice(0, semi)
  const eq = pair.indexOf('=')
  const value = pair.slice(eq + 1)
  const print = value === '' ? '' : `<sha256:${createHash('sha256').update(value).digest('hex').slice(0, 12)}>`
  return `${pair.slice(0, eq)}=${print}${semi < 0 ? '' : line.slice(semi)}`
}

function forward(state, req, res) {
  if (!state.upstream) {
    res.writeHead(503, { 'content-type': 'text/plain' }).end('no upstream yet')
    return
  }
  const target = new URL(req.url, state.upstream)
  const headers = {}
  for (const [k, v] of Object.entries(req.headers)) {
    if (!HOP.has(k)) headers[k] = v
  }
  headers.host = target.host
  const entry = {
    method: req.method,
    path: target.pathname + target.search,
    sent_cookies: (req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim().split('=')[0])
      .filter(Boolean)
      .sort(),
    sent_csrf: 'x-csrf-token' in req.headers,
    origin: req.headers.origin ?? null,
  }
  const up = http.request(target, { method: req.method, headers }, (upRes) => {
    const out = {}
    for (const [k, v] of Object.entries(upRes.headers)) {
      if (!HOP.has(k)) out[k] = v
    }
    entry.status = upRes.statusCode
    entry.set_cookie = (upRes.headers['set-cookie'] ?? []).map(redact)
    state.log.push(entry)
    res.writeHead(upRes.statusCode, out)
    upRes.pipe(res)
  })
  up.on('error', (e) => {
    entry.status = 502
    entry.error = e.message
    state.log.push(entry)
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' })
    res.end(`upstream error: ${e.message}`)
  })
  req.pipe(up)
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [upstream, bind] = process.argv.slice(2)
  if (!upstream) {
    console.error('usage: node proxy.mjs UPSTREAM [HOST:PORT]')
    process.exit(2)
  }
  const p = await startProxy({ upstream, bind: bind ?? '127.0.0.1:3000' })
  console.log(`cookie app on ${p.origin}/app/ (keymint at ${upstream})`)
}
