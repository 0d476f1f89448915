#!/usr/bin/env bash
# IMAP benchmark: a 10,000-message mailbox (bench/gen_mailbox.py) loaded by APPEND into
# mssante and, in the same run, into Dovecot from Debian (maildir, TLS, the same client:
# benches/imap_sync.rs). Then the commands of Thunderbird's first sync (UID FETCH 1:* FLAGS,
# header fields, BODYSTRUCTURE, two SEARCHes) from 4 connections at once, with the
# throughput of each server and the ratio; single-message fetch latency; and mssante's
# memory per idle IDLE connection with 5,000 of them open. Goals: at least Dovecot's
# throughput; under 64 KiB per idle connection.
#
#   bench/imap.sh [MESSAGES] [IDLE_CONNECTIONS]     needs root and dovecot-imapd
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-10000}"
idlers="${2:-5000}"
command -v dovecot >/dev/null || { echo "bench/imap.sh: install dovecot-imapd" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mssante-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/mssante"
client="$(cargo build --release --quiet --bench imap_sync --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "imap_sync":
        print(m["executable"])')"
work="$(mktemp -d /tmp/mssante-bench-imap.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/dovecot/dovecot.conf" ] && dovecot -c "$work/dovecot/dovecot.conf" stop 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
user="dr.bench@hopital.test"
password="bench-password"

echo "generating $messages messages..." >&2
python3 bench/gen_mailbox.py "$messages" "$work/mailbox.msgs"

# mssante: one IMAPS listener.
port="$(free_port)"
cat > "$work/mssante.toml" <<TOML
mode = "dev"
data_dir = "data"
[[listener]]
protocol = "imap"
bind = "127.0.0.1:$port"
tls = "implicit"
max_connections = $((idlers + 100))
TOML
m() { "$bin" --config "$work/mssante.toml" "$@" 2>/dev/null; }
m domain add hopital.test >/dev/null
printf '%s\n' "$password" | m user add "$user" --password-stdin >/dev/null
m user quota "$user" 0 >/dev/null
"$bin" --config "$work/mssante.toml" serve >/dev/null 2>"$work/mssante.log" &
pids+=($!)
server_pid=$!
wait_port "$port"

# Dovecot: maildir, TLS (RSA-2048 like mssante's TEST certificate), one static user.
dport="$(free_port)"
d="$work/dovecot"
mkdir -p "$d/run" "$d/mail" "$d/home"
chown -R dovecot:dovecot "$d/mail" "$d/home"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
cat > "$d/dovecot.conf" <<CONF
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <$d/cert.pem
ssl_key = <$d/key.pem
first_valid_uid = 1
mail_location = maildir:$d/mail/%u
passdb {
  driver = static
  args = password=$password
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$d/home/%u
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $dport
    ssl = yes
  }
}
CONF
dovecot -c "$d/dovecot.conf"
wait_port "$dport"

echo "loading both servers..." >&2
"$client" load "$port" "$user" "$password" "$work/mailbox.msgs" >/dev/null
"$client" load "$dport" "$user" "$password" "$work/mailbox.msgs" >/dev/null

# A warm-up sync each (Dovecot builds its index cache on the first), then the measured one.
"$client" sync "$port" "$user" "$password" 1 >/dev/null
"$client" sync "$dport" "$user" "$password" 1 >/dev/null
"$client" sync "$port" "$user" "$password" 4 >"$work/sync.mssante"
"$client" sync "$dport" "$user" "$password" 4 >"$work/sync.dovecot"

echo "IMAP, $messages messages, Thunderbird's first-sync commands from 4 connections at once"
python3 - "$work/sync.mssante" "$work/sync.dovecot" "$(dovecot --version | cut -d' ' -f1)" <<'PY'
import sys
def read(path):
    out = {}
    for line in open(path):
        name, *fields = line.split()
        out[name] = dict(f.split("=") for f in fields)
    return out
m, d, version = read(sys.argv[1]), read(sys.argv[2]), sys.argv[3]
print("  %-16s %14s %14s %8s" % ("command", "mssante cmd/s", "Dovecot cmd/s", "ratio"))
for name in m:
    if name == "open-message":
        continue
    a, b = float(m[name]["commands/s"]), float(d[name]["commands/s"])
    print("  %-16s %14.2f %14.2f %7.2fx" % (name, a, b, a / b))
a, b = m["open-message"], d["open-message"]
print("  open one message: mssante p50 %s ms p99 %s ms; Dovecot %s p50 %s ms p99 %s ms"
      % (a["p50_ms"], a["p99_ms"], version, b["p50_ms"], b["p99_ms"]))
PY

# Memory per idle IDLE connection: the server's RSS growth while the second half of
# $idlers IDLE connections opens (the first half's passing login allocations are there to
# reuse by then, as on a server that has run for a while), and the total with all open.
before="$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")"
coproc IDLERS { "$client" idle "$port" "$user" "$password" "$idlers"; }
read -r _ half <&"${IDLERS[0]}"
sleep 2
middle="$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")"
echo next >&"${IDLERS[1]}"
read -r _ held <&"${IDLERS[0]}"
sleep 2
after="$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")"
exec {IDLERS[1]}>&-
wait "$IDLERS_PID" 2>/dev/null || true
python3 -c "
half, held, before, middle, after = $half, $held, $before, $middle, $after
per = (after - middle) * 1024 / (held - half)
total = (after - before) * 1024 / held
print(f'  {held} idle IDLE connections: RSS {before // 1024} MiB, {middle // 1024} MiB with {half}, {after // 1024} MiB with {held}: {per / 1024:.1f} KiB per connection of the second half, {total / 1024:.1f} KiB counting everything (goal: under 64 KiB)')
"
