#!/usr/bin/env python3
"""Attack driver for benches/abuse.sh (standard library only).

Runs, for a fixed time, against a keymint on 127.0.0.1:
  - a legitimate user logging in from 127.0.0.2 at a steady pace (success rate, latency);
  - optionally the attacks: wrong-password floods at full speed from 127.0.0.1 (against the
    legitimate user and random usernames) and thousands of silent sockets held open.
Prints one JSON object. Every loop is bounded by --seconds; only loopback is contacted.
"""

import argparse
import asyncio
import json
import random
import string
import time


async def request(reader, writer, host, path, body):
    data = json.dumps(body).encode()
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        + data
    )
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"", b"\n"):
            break
        k, _, v = line.decode("latin-1").partition(":")
        if k.lower() == "content-length":
            length = int(v.strip())
        if k.lower() == "connection" and v.strip().lower() == "close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


class Conn:
    def __init__(self, port, source):
        self.port, self.source = port, source
        self.rw = None

    async def post(self, path, body):
        for _ in range(2):
            try:
                if self.rw is None:
                    self.rw = await asyncio.open_connection(
                        "127.0.0.1", self.port, local_addr=(self.source, 0)
                    )
                # Bounded: a request that gets no answer cannot hold the run past its deadline.
                status, close = await asyncio.wait_for(
                    request(*self.rw, f"127.0.0.1:{self.port}", path, body), timeout=10
                )
                if close:
                    self.rw[1].close()
                    self.rw = None
                return status
            except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                if self.rw:
                    self.rw[1].close()
                self.rw = None
        return 0


async def legit(port, user, password, deadline, pace, out):
    conn = Conn(port, "127.0.0.2")
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        status = await conn.post("/auth/login", {"username": user, "password": password})
        out.append((status, time.monotonic() - t0))
        await asyncio.sleep(max(0.0, pace - (time.monotonic() - t0)))


async def guesser(port, target, deadline, counts):
    # Guessers and silent sockets come from different addresses, as two attackers would:
    # from one address, the per-address connection cap would stop the guessers too.
    conn = Conn(port, "127.0.0.3")
    while time.monotonic() < deadline:
        if random.random() < 0.5:
            name = target
        else:
            name = "".join(random.choices(string.ascii_lowercase, k=12))
        status = await conn.post(
            "/auth/login", {"username": name, "password": "wrong-" + str(random.random())}
        )
        counts[status] = counts.get(status, 0) + 1


async def silent_sockets(port, n, deadline, held):
    socks = []
    while time.monotonic() < deadline:
        while len(socks) < n and time.monotonic() < deadline:
            try:
                socks.append(await asyncio.open_connection("127.0.0.1", port))
            except OSError:
                break
        # Drop the ones the server closed, then top up again.
        alive = []
        for r, w in socks:
            if r.at_eof() or w.is_closing():
                w.close()
            else:
                alive.append((r, w))
        socks = alive
        held.append(len(socks))
        await asyncio.sleep(0.5)
    for _, w in socks:
        w.close()


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--user", default="alice")
    ap.add_argument("--password", required=True)
    ap.add_argument("--attack", action="store_true")
    ap.add_argument("--guessers", type=int, default=32)
    ap.add_argument("--sockets", type=int, default=4000)
    ap.add_argument("--pace", type=float, default=0.25)
    a = ap.parse_args()
    deadline = time.monotonic() + a.seconds
    samples, counts, held = [], {}, []
    tasks = [legit(a.port, a.user, a.password, deadline, a.pace, samples)]
    if a.attack:
        tasks += [guesser(a.port, a.user, deadline, counts) for _ in range(a.guessers)]
        tasks.append(silent_sockets(a.port, a.sockets, deadline, held))
    await asyncio.gather(*tasks)
    ok = [lat for status, lat in samples if status == 200]
    print(
        json.dumps(
            {
                "legit_attempts": len(samples),
                "legit_ok": len(ok),
                "legit_success_rate": len(ok) / len(samples) if samples else 0,
                "legit_p50_ms": round(1000 * (percentile(ok, 50) or 0), 1),
                "legit_p99_ms": round(1000 * (percentile(ok, 99) or 0), 1),
                "attack_responses": counts,
                "attack_throttled": counts.get(429, 0),
                "attack_hashed": counts.get(401, 0),
                "silent_sockets_max_open_client_side": max(held) if held else 0,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
