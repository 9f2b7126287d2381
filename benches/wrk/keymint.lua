-- The one wrk script used by benches/load.sh and benches/revocation_scale.sh.
--
-- The mode comes from the environment (KM_MODE) because wrk hands script arguments to init()
-- only, not to setup() or done():
--   get      plain requests as given on the wrk command line (headers via -H)
--   post     POST with body KM_BODY and Content-Type KM_CONTENT_TYPE
--   refresh  POST /auth/refresh, chaining refresh tokens: each token is single-use (reusing one
--            revokes its family), so every response's new token goes back into this thread's
--            pool and the next request takes one from it. A wrk connection never has more than
--            one request in flight, so a pool seeded with at least one token per connection
--            never runs dry unless the server rejects a token.
-- KM_DELAY_MS, when set, makes each connection wait that long before its next request, turning
-- the closed loop into a bounded request rate (for latency probes that must not saturate the CPU).
-- done() prints one machine-readable line, KMRESULT key=value ..., that the shell scripts parse.

local mode = os.getenv("KM_MODE") or "get"
local threads = {}
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end

function init(args)
  ok, bad, starved, bad_status, bad_body = 0, 0, 0, 0, ""
  if mode == "post" then
    wrk.method = "POST"
    wrk.body = os.getenv("KM_BODY") or ""
    wrk.headers["Content-Type"] = os.getenv("KM_CONTENT_TYPE") or "application/json"
  elseif mode == "refresh" then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    -- Tokens are dealt round-robin from the file: line i goes to thread (i mod T) + 1.
    local n = tonumber(os.getenv("KM_THREADS") or "1")
    pool, head, tail = {}, 1, 0
    local i = 0
    for line in io.lines(os.getenv("KM_TOKENS")) do
      if line ~= "" then
        if (i % n) + 1 == tid then
          tail = tail + 1
          pool[tail] = line
        end
        i = i + 1
      end
    end
  end
end

local delay_ms = tonumber(os.getenv("KM_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  function delay() return delay_ms end
end

if mode == "refresh" then
  -- Note: wrk calls request() once on the first thread before the run to detect pipelining,
  -- which discards one token of that thread; the caller seeds a few spare tokens per thread.
  function request()
    local tok
    if head <= tail then
      tok = pool[head]
      pool[head] = nil
      head = head + 1
    else
      -- Every token of this thread is lost (rejected): send one that must fail, and count it.
      starved = starved + 1
      tok = "pool-exhausted"
    end
    return wrk.format(nil, nil, nil, '{"refresh_token":"' .. tok .. '"}')
  end

  function response(status, headers, body)
    if status == 200 then
      local tok = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
      if tok then
        ok = ok + 1
        tail = tail + 1
        pool[tail] = tok
        return
      end
    end
    bad = bad + 1
    bad_status = status
    bad_body = string.sub(body or "", 1, 160)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local ms = function(p) return latency:percentile(p) / 1000 end
  local line = string.format(
    "KMRESULT requests=%d duration_s=%.2f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f"
      .. " non2xx=%d connect=%d read=%d write=%d timeout=%d",
    summary.requests, secs, summary.requests / secs, ms(50), ms(90), ms(99), latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout)
  if mode == "refresh" then
    local tok_ok, tok_bad, tok_starved, last = 0, 0, 0, ""
    for _, t in ipairs(threads) do
      tok_ok = tok_ok + (t:get("ok") or 0)
      tok_bad = tok_bad + (t:get("bad") or 0)
      tok_starved = tok_starved + (t:get("starved") or 0)
      if (t:get("bad") or 0) > 0 then
        last = tostring(t:get("bad_status")) .. ":" .. (t:get("bad_body") or "")
      end
    end
    line = line .. string.format(" chained=%d rejected=%d starved=%d", tok_ok, tok_bad, tok_starved)
    if last ~= "" then
      -- Last so the shell parser can take the rest of the line verbatim.
      line = line .. " last_rejection=" .. string.gsub(last, "%s", "_")
    end
  end
  io.write(line .. "\n")
end
