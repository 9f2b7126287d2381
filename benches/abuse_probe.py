#!/usr/bin/env python3
"""Abuse probe for keymint (Python 3 stdlib only, asyncio).

    python3 benches/abuse_probe.py LABEL /path/to/keymint [--only a,b,c,d,e,f]
    (PROBE_SOCKETS=N changes scenario c's 4000 silent sockets, for a supplementary run)

Starts the given binary with `serve` on fresh temp dirs (one fresh instance per scenario, so
one scenario's throttling state can't leak into another), measures scenarios a-g and prints one
JSON line on stdout. Progress goes to stderr. Only 127.0.0.0/8 is contacted, every loop is
bounded in time, and every server this script starts is stopped by its own pid.
"""

import asyncio
import base64
import errno
import json
import os
import random
import resource
import select
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time

LOOP = "127.0.0.1"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind((LOOP, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rand_name(k=12):
    return "".join(random.choices(string.ascii_lowercase, k=k))


# --------------------------------------------------------------------------- server handling


class Server:
    def __init__(self, binary, users=(), extra_env=None):
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="km-probe.")
        self.port = free_port()
        self.env = dict(os.environ)
        self.env.update(
            KEYMINT_BIND=f"{LOOP}:{self.port}",
            KEYMINT_DATABASE_URL=f"sqlite://{self.tmp}/keymint.db",
            KEYMINT_KEYS_DIR=f"{self.tmp}/keys",
            RUST_LOG="warn",
        )
        self.env.update(extra_env or {})
        self.users = users
        self.proc = None
        self.logf = None

    def start(self):
        for name, pw, roles in self.users:
            cmd = [self.binary, "users", "create", name, "--password-stdin"]
            for r in roles:
                cmd += ["--role", r]
            subprocess.run(
                cmd, input=(pw + "\n").encode(), env=self.env, check=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
            )
        self.logf = open(f"{self.tmp}/server.log", "wb")
        self.proc = subprocess.Popen(
            [self.binary, "serve"], env=self.env, stdout=self.logf, stderr=self.logf
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + open(f"{self.tmp}/server.log").read())
            try:
                st, _, _ = sync_get(self.port, "/readyz", timeout=1)
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server not ready within 60 s")

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # kB
        return None

    def nofile(self):
        with open(f"/proc/{self.proc.pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return int(line.split()[3])

    def db_sizes(self):
        def size(p):
            try:
                return os.path.getsize(p)
            except FileNotFoundError:
                return 0
        return {
            "db": size(f"{self.tmp}/keymint.db"),
            "wal": size(f"{self.tmp}/keymint.db-wal"),
        }

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # by our own child's pid
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.logf:
            self.logf.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def sync_get(port, path, timeout=5, source=None):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect((LOOP, port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {LOOP}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, body


# --------------------------------------------------------------------------- async HTTP/1.1


async def read_response(reader):
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed before response")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    elif "content-length" in headers:
        n = int(headers["content-length"])
        if n:
            body = await reader.readexactly(n)
    close = headers.get("connection", "").lower() == "close"
    return status, headers, body, close


def build_request(method, path, port, body=b"", ctype=None, headers=None, keepalive=False):
    h = [f"{method} {path} HTTP/1.1", f"Host: {LOOP}:{port}"]
    if ctype:
        h.append(f"Content-Type: {ctype}")
    if body or method in ("POST", "PUT", "PATCH"):
        h.append(f"Content-Length: {len(body)}")
    for k, v in (headers or {}).items():
        h.append(f"{k}: {v}")
    if not keepalive:
        h.append("Connection: close")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


async def one_shot(port, method, path, body=b"", ctype=None, headers=None, source=None, timeout=60):
    """A request on its own connection. Returns (status, headers, body); status 0 on error."""
    async def go():
        kw = {"local_addr": (source, 0)} if source else {}
        r, w = await asyncio.open_connection(LOOP, port, **kw)
        try:
            w.write(build_request(method, path, port, body, ctype, headers))
            await w.drain()
            st, hd, b, _ = await read_response(r)
            return st, hd, b
        finally:
            w.close()
    try:
        return await asyncio.wait_for(go(), timeout)
    except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
        return 0, {"error": repr(e)}, b""


async def post_json(port, path, obj, **kw):
    return await one_shot(port, "POST", path, json.dumps(obj).encode(), "application/json", **kw)


def form(d):
    from urllib.parse import urlencode
    return urlencode(d).encode()


def basic(cid, secret):
    from urllib.parse import quote
    raw = f"{quote(cid, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def count(statuses):
    out = {}
    for s in statuses:
        out[str(s)] = out.get(str(s), 0) + 1
    return out


# --------------------------------------------------------------------------- scenarios


async def scenario_a(binary):
    srv = Server(binary, users=[("alice", "correct-horse-battery", [])]).start()
    try:
        rs = await asyncio.gather(*[
            post_json(srv.port, "/auth/login", {"username": "alice", "password": f"wrong-{i}-password"},
                      source=LOOP)
            for i in range(40)
        ])
        c = count(r[0] for r in rs)
        return {"statuses": c, "hashed_401": c.get("401", 0), "throttled_429": c.get("429", 0)}
    finally:
        srv.stop()


async def scenario_b(binary):
    srv = Server(binary, users=[("alice", "correct-horse-battery", [])]).start()
    try:
        names = [f"user{i:02d}-{rand_name(6)}" for i in range(40)]
        rs = await asyncio.gather(*[
            post_json(srv.port, "/auth/login", {"username": n, "password": "wrong-password"}, source=LOOP)
            for n in names
        ])
        c = count(r[0] for r in rs)
        return {"statuses": c, "hashed_401": c.get("401", 0), "throttled_429": c.get("429", 0)}
    finally:
        srv.stop()


def poll_sockets(socks, wait_ms=300):
    """Classify each socket: closed by the server (EOF / reset / error) or held (read blocks)."""
    p = select.poll()
    by_fd = {}
    for s in socks:
        p.register(s.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        by_fd[s.fileno()] = s
    ready = {fd for fd, _ in p.poll(wait_ms)}
    held, closed = [], {"eof": 0, "reset": 0, "data_then_eof": 0, "data_still_open": 0, "error": 0}
    for fd, s in by_fd.items():
        if fd not in ready:
            held.append(s)
            continue
        try:
            d = s.recv(65536)
            if not d:
                closed["eof"] += 1
            else:
                # The server answered something (e.g. 408) before closing; check for EOF.
                try:
                    d2 = s.recv(65536)
                    closed["data_then_eof" if not d2 else "data_still_open"] += 1
                except BlockingIOError:
                    closed["data_still_open"] += 1
                    held.append(s)
                    continue
                except ConnectionResetError:
                    closed["data_then_eof"] += 1
        except ConnectionResetError:
            closed["reset"] += 1
        except BlockingIOError:
            held.append(s)
            continue
        except OSError:
            closed["error"] += 1
        s.close()
    return held, closed


def server_side(srv):
    """What the server side really holds: established TCP sockets whose local port is the
    server's (accepted or still in the accept queue), and socket descriptors of the process.
    A client-side socket whose handshake the kernel completed with a SYN cookie while the
    accept queue was full never reaches the server ("phantom"): its read blocks forever, so
    the client-side view alone over-counts."""
    out = subprocess.run(["ss", "-tanH", "state", "established", "sport", "=", f":{srv.port}"],
                         capture_output=True, text=True, timeout=10).stdout
    estab = len([l for l in out.splitlines() if l.strip()])
    lst = subprocess.run(["ss", "-tlnH", "sport", "=", f":{srv.port}"],
                         capture_output=True, text=True, timeout=10).stdout.split()
    fds = 0
    for fd in os.listdir(f"/proc/{srv.proc.pid}/fd"):
        try:
            if os.readlink(f"/proc/{srv.proc.pid}/fd/{fd}").startswith("socket:"):
                fds += 1
        except OSError:
            pass
    return {"server_side_established": estab, "server_socket_fds": fds,
            "listen_queue": int(lst[1]) if len(lst) > 2 else None}


def scenario_c_sync(srv, n=4000, batch=50):
    socks, failed = [], {}
    t_start = time.monotonic()
    base = server_side(srv)
    # Open in paced batches, each batch's handshakes complete before the next, so that the
    # server's accept queue (backlog 128) never overflows into SYN-cookie phantoms: the server
    # sees all n connections.
    deadline = time.monotonic() + 60
    while len(socks) + sum(failed.values()) < n and time.monotonic() < deadline:
        pending = []
        for _ in range(min(batch, n - len(socks) - sum(failed.values()))):
            s = socket.socket()
            s.setblocking(False)
            e = s.connect_ex((LOOP, srv.port))
            if e in (0, errno.EINPROGRESS):
                pending.append(s)
            else:
                k = errno.errorcode.get(e, str(e))
                failed[k] = failed.get(k, 0) + 1
                s.close()
        bdeadline = time.monotonic() + 10
        while pending and time.monotonic() < bdeadline:
            p = select.poll()
            fds = {s.fileno(): s for s in pending}
            for fd in fds:
                p.register(fd, select.POLLOUT | select.POLLERR | select.POLLHUP)
            for fd, _ in p.poll(200):
                s = fds[fd]
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err == 0:
                    socks.append(s)
                else:
                    k = errno.errorcode.get(err, str(err))
                    failed[k] = failed.get(k, 0) + 1
                    s.close()
                pending.remove(s)
        for s in pending:
            failed["timeout"] = failed.get("timeout", 0) + 1
            s.close()
        time.sleep(0.01)
    t0 = time.monotonic()
    ss0 = server_side(srv)
    log(f"  c: {len(socks)} connected in {t0 - t_start:.2f}s, failed {failed}, server side {ss0} (baseline {base})")
    # Fresh GET /healthz from 127.0.0.2.
    h0 = time.monotonic()
    try:
        st, head, body = sync_get(srv.port, "/healthz", timeout=10, source="127.0.0.2")
        health = {"ok": st == 200, "status": st, "ms": round(1000 * (time.monotonic() - h0), 1)}
    except OSError as e:
        health = {"ok": False, "error": repr(e), "ms": round(1000 * (time.monotonic() - h0), 1)}
    log(f"  c: healthz {health}")
    time.sleep(max(0.0, t0 + 1 - time.monotonic()))
    held1, closed1 = poll_sockets(socks)
    ss1 = server_side(srv)
    log(f"  c: after 1 s held {len(held1)} closed {closed1} server side {ss1}")
    time.sleep(max(0.0, t0 + 15 - time.monotonic()))
    held15, closed15 = poll_sockets(held1)
    ss15 = server_side(srv)
    log(f"  c: after 15 s held {len(held15)} closed {closed15} server side {ss15}")
    # A second healthz after 15 s, for the record.
    h0 = time.monotonic()
    try:
        st, _, _ = sync_get(srv.port, "/healthz", timeout=10, source="127.0.0.2")
        health15 = {"ok": st == 200, "status": st, "ms": round(1000 * (time.monotonic() - h0), 1)}
    except OSError as e:
        health15 = {"ok": False, "error": repr(e)}
    for s in held15:
        s.close()
    return {
        "connected": len(socks),
        "connect_seconds": round(t0 - t_start, 2),
        "connect_failed": failed,
        "server_nofile_limit": srv.nofile(),
        "server_side_baseline": base,
        "server_side_after_connecting": ss0,
        "healthz_from_127.0.0.2": health,
        "held_after_1s": len(held1),
        "closed_by_server_by_1s": closed1,
        "server_side_after_1s": ss1,
        "held_after_15s": len(held15),
        "closed_by_server_1s_to_15s": closed15,
        "server_side_after_15s": ss15,
        "healthz_after_15s": health15,
    }


async def scenario_c(binary):
    srv = Server(binary).start()
    try:
        return await asyncio.to_thread(scenario_c_sync, srv, int(os.environ.get("PROBE_SOCKETS", "4000")))
    finally:
        srv.stop()


async def flood(port, n, make_body, workers=16, seconds=300, source=LOOP):
    """n login attempts over `workers` keep-alive connections, bounded by `seconds`."""
    deadline = time.monotonic() + seconds
    left = [n]
    statuses = {}
    reconnects = [0]

    async def worker():
        rw = None
        while left[0] > 0 and time.monotonic() < deadline:
            left[0] -= 1
            body = make_body()
            req = build_request("POST", "/auth/login", port, body, "application/json", keepalive=True)
            for _ in range(2):
                try:
                    if rw is None:
                        rw = await asyncio.open_connection(LOOP, port, local_addr=(source, 0))
                        reconnects[0] += 1
                    rw[1].write(req)
                    await rw[1].drain()
                    st, _, _, close = await asyncio.wait_for(read_response(rw[0]), 30)
                    if close:
                        rw[1].close()
                        rw = None
                    break
                except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                    if rw:
                        rw[1].close()
                    rw = None
                    st = 0
            statuses[str(st)] = statuses.get(str(st), 0) + 1
        if rw:
            rw[1].close()

    t0 = time.monotonic()
    await asyncio.gather(*[worker() for _ in range(workers)])
    return statuses, round(time.monotonic() - t0, 1), reconnects[0] - workers


def growth(before, after, attempts):
    d_db = after["db"] - before["db"]
    d_wal = after["wal"] - before["wal"]
    total = d_db + d_wal
    per = total / attempts if attempts else float("nan")
    return {
        "db_bytes_before": before["db"], "wal_bytes_before": before["wal"],
        "db_bytes_after": after["db"], "wal_bytes_after": after["wal"],
        "db_growth_bytes": d_db, "wal_growth_bytes": d_wal, "total_growth_bytes": total,
        "bytes_per_attempt": round(per, 1),
        "db_bytes_per_attempt": round(d_db / attempts, 1) if attempts else None,
        "wal_bytes_per_attempt": round(d_wal / attempts, 1) if attempts else None,
        "MB_per_100k_attempts": round(per * 1e5 / 1e6, 2),
    }


async def scenario_d_one(binary, ulen, n=20000):
    srv = Server(binary, users=[("alice", "correct-horse-battery", [])]).start()
    try:
        out = {"username_chars": ulen}
        # Trigger throttling: 25 failed logins with distinct usernames, one after another.
        trig = []
        for i in range(25):
            st, _, _ = await post_json(srv.port, "/auth/login",
                                       {"username": f"trigger{i:02d}", "password": "wrong-password"},
                                       source=LOOP)
            trig.append(st)
        out["trigger_statuses"] = count(trig)
        await asyncio.sleep(1)
        # Probe: is a long username accepted or rejected with 400?
        if ulen > 64:
            long_name = base64.urlsafe_b64encode(os.urandom(ulen * 3 // 4)).decode()[:ulen]
            st, _, b = await post_json(srv.port, "/auth/login",
                                       {"username": long_name, "password": "wrong-password"}, source=LOOP)
            out["probe_status_for_long_username"] = st
            out["probe_body"] = b[:200].decode("utf-8", "replace")
            if st == 400:
                out["rejected_with_400"] = True
                return out
        s0 = srv.db_sizes()

        def body():
            raw = os.urandom(ulen * 3 // 4 + 3)
            name = base64.urlsafe_b64encode(raw).decode()[:ulen]
            return json.dumps({"username": name, "password": "wrong-password"}).encode()

        st, secs, reconnects = await flood(srv.port, n, body)
        s1 = srv.db_sizes()
        await asyncio.sleep(2)
        s2 = srv.db_sizes()
        throttled = st.get("429", 0)
        out.update({
            "attempts_sent": sum(st.values()),
            "flood_statuses": st,
            "flood_seconds": secs,
            "reconnects": reconnects,
            "growth_per_throttled_attempt": growth(s0, s2, throttled),
            "sizes_immediately_after": s1,
            "sizes_2s_after": s2,
            "rss_kB_after": srv.status("VmRSS"),
        })
        # Graceful stop (SIGTERM to our own child): SQLite checkpoints the WAL into the main
        # file on the last close, so this is the data that really stays on disk.
        srv.proc.terminate()
        srv.proc.wait(timeout=60)
        s3 = srv.db_sizes()
        out["sizes_after_graceful_stop"] = s3
        out["persistent_bytes_per_throttled_attempt_after_stop"] = (
            round((s3["db"] + s3["wal"] - s0["db"] - s0["wal"]) / throttled, 1) if throttled else None)
        import sqlite3
        con = sqlite3.connect(f"file:{srv.tmp}/keymint.db?mode=ro", uri=True)
        try:
            rows, detail = con.execute(
                "SELECT count(*), coalesce(sum(length(detail)), 0) FROM audit_events").fetchone()
            out["audit_events_rows_after"] = rows
            out["audit_events_detail_bytes_after"] = detail
        finally:
            con.close()
        # Checkpoint the WAL into the main file (our own copy, server stopped): the data that
        # remains once the WAL is folded in and truncated.
        con = sqlite3.connect(f"{srv.tmp}/keymint.db")
        try:
            out["wal_checkpoint_truncate"] = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            con.close()
        s4 = srv.db_sizes()
        out["sizes_after_checkpoint"] = s4
        out["checkpointed_bytes_per_throttled_attempt"] = (
            round((s4["db"] + s4["wal"] - s0["db"] - s0["wal"]) / throttled, 1) if throttled else None)
        return out
    finally:
        srv.stop()


async def scenario_d(binary):
    res = {}
    first = await scenario_d_one(binary, 60000)
    res["with_60000_char_usernames"] = first
    res["with_64_char_usernames"] = await scenario_d_one(binary, 64)
    return res


async def scenario_e(binary):
    srv = Server(binary, extra_env={
        "KEYMINT_LOGIN_USER_FAILURES": "1000000", "KEYMINT_LOGIN_IP_FAILURES": "1000000",
    }).start()
    try:
        await asyncio.sleep(2)
        rest = {"VmRSS_kB": srv.status("VmRSS"), "VmHWM_kB": srv.status("VmHWM")}
        rs = await asyncio.gather(*[
            post_json(srv.port, "/auth/login", {"username": f"nobody{i:02d}-{rand_name(6)}",
                                                "password": "wrong-password"}, source=LOOP)
            for i in range(64)
        ])
        after = {"VmRSS_kB": srv.status("VmRSS"), "VmHWM_kB": srv.status("VmHWM")}
        return {"at_rest": rest, "after_64_concurrent": after, "statuses": count(r[0] for r in rs)}
    finally:
        srv.stop()


async def scenario_fg(binary):
    admin_pw = "admin-password-123"
    srv = Server(binary, users=[("root", admin_pw, ["admin"])]).start()
    out = {}
    try:
        st, _, b = await post_json(srv.port, "/auth/login", {"username": "root", "password": admin_pw})
        out["admin_login_status"] = st
        admin_tok = json.loads(b)["access_token"]
        auth = {"Authorization": f"Bearer {admin_tok}"}
        st, _, b = await post_json(srv.port, "/admin/clients", {
            "name": "app", "grant_types": ["password", "refresh_token"], "scopes": ["profile"],
            "audience": None}, headers=auth)
        out["create_client_status"] = st
        c = json.loads(b)
        cid, secret = c["client_id"], c["client_secret"]
        # Control: the first-party admin token can create a user.
        st, _, b = await post_json(srv.port, "/admin/users",
                                   {"username": "control", "password": "control-password", "roles": []},
                                   headers=auth)
        out["control_first_party_admin_create_user_status"] = st
        st, _, b = await one_shot(srv.port, "POST", "/oauth/token",
                                  form({"grant_type": "password", "username": "root", "password": admin_pw}),
                                  "application/x-www-form-urlencoded",
                                  headers={"Authorization": basic(cid, secret)})
        out["password_grant_status"] = st
        tok = json.loads(b)
        # Peek at the token's claims (no verification: we only want to report them).
        claims = json.loads(base64.urlsafe_b64decode(tok["access_token"].split(".")[1] + "=="))
        out["client_token_claims"] = {k: claims.get(k) for k in ("scope", "client_id", "roles", "aud", "azp") if k in claims}
        st, _, b = await post_json(srv.port, "/admin/users",
                                   {"username": "mallory", "password": "mallory-password", "roles": ["admin"]},
                                   headers={"Authorization": f"Bearer {tok['access_token']}"})
        out["f_client_token_POST_admin_users_status"] = st
        out["f_body"] = b[:200].decode("utf-8", "replace")
        # g. Unauthenticated RFC 7009 revocation of the client's refresh token.
        st, _, b = await one_shot(srv.port, "POST", "/oauth/revoke", form({"token": tok["refresh_token"]}),
                                  "application/x-www-form-urlencoded")
        out["g_unauthenticated_revoke_status"] = st
        out["g_revoke_body"] = b[:200].decode("utf-8", "replace")
        st, _, b = await one_shot(srv.port, "POST", "/oauth/token",
                                  form({"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]}),
                                  "application/x-www-form-urlencoded",
                                  headers={"Authorization": basic(cid, secret)})
        out["g_refresh_after_revoke_status"] = st
        out["g_refresh_body"] = b[:200].decode("utf-8", "replace") if st != 200 else "(token pair)"
        return out
    finally:
        srv.stop()


async def main():
    label, binary = sys.argv[1], os.path.abspath(sys.argv[2])
    only = None
    if "--only" in sys.argv:
        only = set(sys.argv[sys.argv.index("--only") + 1].split(","))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    result = {"binary": label, "path": binary, "probe_nofile_limit": hard}
    for key, fn in [("a_one_user_40_concurrent", scenario_a), ("b_40_usernames_40_concurrent", scenario_b),
                    ("c_4000_silent_sockets", scenario_c), ("d_db_growth_throttled_flood", scenario_d),
                    ("e_rss_64_concurrent_failed_logins", scenario_e), ("fg_oauth_client_token", scenario_fg)]:
        if only and key[0] not in only:
            continue
        log(f"{label}: {key}")
        t = time.monotonic()
        try:
            result[key] = await fn(binary)
        except Exception as e:  # report, keep going
            result[key] = {"error": repr(e)}
        log(f"{label}: {key} done in {time.monotonic() - t:.1f}s: {json.dumps(result[key])[:400]}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
