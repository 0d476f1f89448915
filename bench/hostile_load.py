#!/usr/bin/env python3
"""Hostile clients for bench/hostile.sh: N connections that never log in, each from its own
loopback address (127.0.0.0/8, so no per-address cap refuses them), each doing its worst to
make the server hold memory: half on the cleartext IMAP port, half over implicit TLS; each
sends a command line just under the pre-login line limit without its line end, or a
credential literal just under the pre-login literal limit without its last octet, then
trickles one more octet every few seconds (slowloris). Meanwhile a normal user logs in,
selects INBOX and logs out, again and again: the time each takes is the service the doctor
gets.

  hostile_load.py hold PLAIN_PORT TLS_PORT N [idle]  opens N, prints "held N", waits for stdin
                                                    (idle: only "a NOOP" trickled, no large line)
  hostile_load.py probe TLS_PORT USER PASSWORD K   K logins; prints p50 and max in ms

Every connection goes to 127.0.0.1 only; the run stops by itself (the hold ends when its
stdin closes, at most after 600 s).
"""
import asyncio
import ssl
import sys
import time

LINE_BEFORE_LOGIN = 8 * 1024      # src/imap/input.rs MAX_LINE_BEFORE_LOGIN
LITERAL_BEFORE_LOGIN = 8 * 1024   # [limits] max_literal_before_login


def source(i):
    """The i-th loopback source address: 127.1.0.1, 127.1.0.2, ..."""
    i += 1
    return "127.%d.%d.%d" % (1 + i // 65025, (i // 255) % 255, 1 + i % 255)


async def hostile(i, plain_port, tls_port, held, stop, idle):
    tls = i % 2 == 1
    ctx = ssl._create_unverified_context() if tls else None
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", tls_port if tls else plain_port, ssl=ctx,
            local_addr=(source(i), 0))
        await reader.readline()  # greeting
        if idle:
            writer.write(b"a NO")
        elif i % 4 < 2:
            writer.write(b"a LOGIN " + b"x" * (LINE_BEFORE_LOGIN - 20))
        else:
            writer.write(b"a LOGIN {%d}\r\n" % LITERAL_BEFORE_LOGIN)
            await writer.drain()
            await reader.readline()  # + Ready for literal data
            writer.write(b"y" * (LITERAL_BEFORE_LOGIN - 1))
        await writer.drain()
        held.append(writer)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 5)
            except asyncio.TimeoutError:
                writer.write(b"O" if idle else b"z")  # one octet more, now and then
                await writer.drain()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ConnectionError):
        pass


async def hold(plain_port, tls_port, n, idle):
    held, stop = [], asyncio.Event()
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(hostile(i, plain_port, tls_port, held, stop, idle)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    deadline = time.time() + 120
    while len(held) < n and time.time() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(2)  # the server has read what was sent
    print("held %d" % len(held), flush=True)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), 600)
    except asyncio.TimeoutError:
        pass
    stop.set()
    for w in held:
        w.close()
    await asyncio.gather(*tasks, return_exceptions=True)


async def probe(port, user, password, k):
    ctx = ssl._create_unverified_context()
    times = []
    for i in range(k):
        start = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        await reader.readline()
        for tag, line in (("p1", 'LOGIN %s "%s"' % (user, password)), ("p2", "SELECT INBOX"),
                          ("p3", "LOGOUT")):
            writer.write(("%s %s\r\n" % (tag, line)).encode())
            await writer.drain()
            while True:
                reply = await reader.readline()
                if not reply:
                    raise SystemExit("probe: connection closed before %s's reply" % tag)
                if reply.startswith(tag.encode() + b" "):
                    if not reply.startswith(tag.encode() + b" OK"):
                        raise SystemExit("probe: %r" % reply)
                    break
        times.append((time.perf_counter() - start) * 1000)
        writer.close()
        await asyncio.sleep(0.1)
    times.sort()
    print("p50_ms=%.1f max_ms=%.1f" % (times[len(times) // 2], times[-1]), flush=True)


def main():
    mode = sys.argv[1]
    if mode == "hold":
        idle = len(sys.argv) > 5 and sys.argv[5] == "idle"
        asyncio.run(hold(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), idle))
    elif mode == "probe":
        asyncio.run(probe(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
