#!/usr/bin/env python3
"""SMTP load generator for bench/smtp.sh: N messages of SIZE octets over C parallel
STARTTLS sessions (with a client certificate), each session sending its share back to back.
Counts a message only when the server answered 250 to its end of data; prints one line:
`messages seconds rate`."""
import argparse, socket, ssl, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--cert", required=True)
p.add_argument("--key", required=True)
p.add_argument("--sender", required=True)
p.add_argument("--to", required=True)
p.add_argument("--messages", type=int, default=2000)
p.add_argument("--connections", type=int, default=10)
p.add_argument("--size", type=int, default=4096)
p.add_argument("--message", help="send this file (headers and body) instead of a generated message")
a = p.parse_args()

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(a.cert, a.key)

if a.message:
    raw = open(a.message, "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    # Dot-stuffing (RFC 5321 4.5.2).
    body = b"".join(b"." + l if l.startswith(b".") else l for l in raw.splitlines(keepends=True))
else:
    line = ("x" * 76 + "\r\n").encode()
    head = f"From: <{a.sender}>\r\nTo: <{a.to}>\r\nSubject: bench\r\n\r\n".encode()
    body = head + line * ((a.size - len(head)) // len(line) + 1)
    body = body[: a.size - 2] + b"\r\n"

ok = [0] * a.connections
errors = []

def reply(f):
    while True:
        l = f.readline()
        if not l:
            raise ConnectionError("closed")
        if l[3:4] != b"-":
            return l

def worker(i, count):
    try:
        s = socket.create_connection(("127.0.0.1", a.port))
        f = s.makefile("rb")
        reply(f)
        s.sendall(b"EHLO bench.test\r\n"); reply(f)
        s.sendall(b"STARTTLS\r\n"); reply(f)
        t = ctx.wrap_socket(s)
        f = t.makefile("rb")
        t.sendall(b"EHLO bench.test\r\n"); reply(f)
        for _ in range(count):
            # Pipelined envelope (both servers offer PIPELINING), then the data.
            t.sendall(f"MAIL FROM:<{a.sender}>\r\nRCPT TO:<{a.to}>\r\nDATA\r\n".encode())
            for want in (b"250", b"250", b"354"):
                r = reply(f)
                if not r.startswith(want):
                    raise RuntimeError(r.decode(errors="replace"))
            t.sendall(body + b".\r\n")
            r = reply(f)
            if not r.startswith(b"250"):
                raise RuntimeError(r.decode(errors="replace"))
            ok[i] += 1
        t.sendall(b"QUIT\r\n")
        t.close()
    except Exception as e:  # reported, and the run fails
        errors.append(f"connection {i}: {e}")

share = [a.messages // a.connections + (1 if i < a.messages % a.connections else 0) for i in range(a.connections)]
threads = [threading.Thread(target=worker, args=(i, n)) for i, n in enumerate(share)]
start = time.monotonic()
for th in threads: th.start()
for th in threads: th.join()
elapsed = time.monotonic() - start
if errors:
    print("\n".join(errors[:5]), file=sys.stderr)
    sys.exit(1)
print(f"{sum(ok)} {elapsed:.3f} {sum(ok) / elapsed:.1f}")
