"""Mixed traffic for benches/chaos.sh: through the balancer, each worker logs in, refreshes a
few times, checks /auth/me and logs out, over and over, until DEADLINE (Unix seconds). Every
response is written as one JSON line: time, operation, status; every acknowledged logout also
carries the access token it revoked, so the script can check afterwards that every instance
refuses it. Standard library only."""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

BASE, USERS, DEADLINE, OUT = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3]), sys.argv[4]
PASSWORD = "chaos-password-1"
lock = threading.Lock()
out = open(OUT, "w")


def call(method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        return e.code, None
    except Exception:  # connection refused or reset: the balancer itself is down
        return 0, None


def record(op, status, **extra):
    with lock:
        out.write(json.dumps({"t": time.time(), "op": op, "status": status, **extra}) + "\n")


def worker(user):
    while time.time() < DEADLINE:
        st, body = call("POST", "/auth/login", {"username": user, "password": PASSWORD})
        record("login", st)
        if st != 200:
            time.sleep(0.2)
            continue
        access, refresh = body["access_token"], body["refresh_token"]
        for _ in range(3):
            st, body = call("POST", "/auth/refresh", {"refresh_token": refresh})
            record("refresh", st)
            if st != 200:
                break
            access, refresh = body["access_token"], body["refresh_token"]
        st, _ = call("GET", "/auth/me", token=access)
        record("me", st)
        st, _ = call("POST", "/auth/logout", token=access)
        record("logout", st, token=access if st == 204 else None)


threads = [threading.Thread(target=worker, args=(u,)) for u in USERS]
for t in threads:
    t.start()
for t in threads:
    t.join()
out.close()
