#!/usr/bin/env python3
"""A flood of anonymous logins with made-up usernames, and what it does to the server.

Sends LOGINS `POST /api/token/` requests, CONCURRENCY at a time, each for a different unknown
username, while sampling `GET /healthz` latency every 20 ms; reports the server's peak RSS
(VmHWM) and the healthz p50/p99 during the flood, and how the logins were answered.

    python3 bench/login_flood.py --bin target/release/simple-chat --logins 2000 --concurrency 200

Starts the server itself on a temporary SQLite database on 127.0.0.1 and stops it afterwards.
Standard library only.
"""

import argparse
import asyncio
import collections
import json
import os
import socket
import subprocess
import tempfile
import time


async def http(host, port, method, path, body=b""):
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return int(data.split(b" ", 2)[1])


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


async def flood(port, logins, concurrency, answers):
    queue = asyncio.Queue()
    for i in range(logins):
        queue.put_nowait(i)

    async def worker():
        while not queue.empty():
            i = queue.get_nowait()
            body = json.dumps({"username": f"nobody-{i}-{os.getpid()}", "password": "wrong-pass-1"})
            try:
                answers[await http("127.0.0.1", port, "POST", "/api/token/", body.encode())] += 1
            except OSError as error:
                answers[type(error).__name__] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))


SAMPLER = """
import socket, sys, time
port, out = int(sys.argv[1]), open(sys.argv[2], "w")
while True:
    started = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    while s.recv(4096):
        pass
    s.close()
    out.write(f"{(time.perf_counter() - started) * 1000}\\n")
    out.flush()
    time.sleep(0.02)
"""


async def main(args):
    work = tempfile.mkdtemp()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = dict(os.environ, DATABASE_URL=f"sqlite://{work}/flood.sqlite3", RUST_LOG="error",
               # Every login reaches the password check (a flood from many addresses).
               SIMPLE_CHAT_LOGIN_FAILURES_PER_ADDRESS="100000000")
    server = subprocess.Popen([args.bin, "serve", "--bind", f"127.0.0.1:{port}"], env=env)
    try:
        for _ in range(100):
            try:
                await http("127.0.0.1", port, "GET", "/healthz")
                break
            except OSError:
                await asyncio.sleep(0.1)
        idle = peak_rss_kib(server.pid)
        answers = collections.Counter()
        # /healthz is sampled from a process of its own, so the flood's event loop does not
        # delay the measurement.
        samples = os.path.join(work, "healthz.txt")
        sampler = subprocess.Popen(["python3", "-c", SAMPLER, str(port), samples])
        started = time.perf_counter()
        await flood(port, args.logins, args.concurrency, answers)
        elapsed = time.perf_counter() - started
        sampler.terminate()
        sampler.wait()
        with open(samples) as lines:
            latencies = sorted(float(line) for line in lines if line.strip())
        pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
        print(f"logins: {args.logins} at {args.concurrency} at once, {elapsed:.1f} s; answers: {dict(answers)}")
        print(f"peak RSS: {peak_rss_kib(server.pid) / 1024:.1f} MB (idle {idle / 1024:.1f} MB)")
        print(f"/healthz during the flood: p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms over {len(latencies)} samples")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/simple-chat")
    parser.add_argument("--logins", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
