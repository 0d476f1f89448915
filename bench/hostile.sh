#!/usr/bin/env bash
# Hostile clients: N connections that never log in, each from its own loopback address and
# each doing its worst to make the server hold memory (a command line just under the
# pre-login limit without its end, or a credential literal one octet short, then one octet
# every 5 s), half in cleartext and half over TLS (bench/hostile_load.py). Reports the
# server's RSS per hostile connection and the time a real user takes to log in, SELECT
# INBOX and log out meanwhile, for mssante and, in the same run, for Dovecot from Debian
# (high-performance login processes, the same load). Goals: under 64 KiB per
# unauthenticated connection; the real user served in under 100 ms.
#
#   bench/hostile.sh [CONNECTIONS]        needs root and dovecot-imapd (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"
command -v dovecot >/dev/null || { echo "bench/hostile.sh: apt-get install dovecot-imapd" >&2; exit 1; }
ulimit -n $((n * 4 + 1000))
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mssante-target}"
echo "building mssante (release) in $CARGO_TARGET_DIR..." >&2
cargo build --release
bin="$CARGO_TARGET_DIR/release/mssante"
work="$(mktemp -d /tmp/mssante-bench-hostile.XXXXXX)"
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
rss_kib() { awk '/VmRSS/ {s += $2} END {print s + 0}' "$@" 2>/dev/null; }
user="dr.bench@hopital.test"
password="bench-password"

# mssante: IMAP in cleartext and over TLS. The login and command deadlines are raised so
# that the hostile connections stay for the measurement (by default they are closed after
# 60 s: that is the point of those deadlines, measured by tests/hostile_input.rs).
plain="$(free_port)"; tls="$(free_port)"
cat > "$work/mssante.toml" <<TOML
mode = "dev"
data_dir = "data"
[limits]
login_timeout_secs = 600
command_timeout_secs = 600
[[listener]]
protocol = "imap"
bind = "127.0.0.1:$plain"
tls = "starttls"
max_connections = $((n + 100))
[[listener]]
protocol = "imap"
bind = "127.0.0.1:$tls"
tls = "implicit"
max_connections = $((n + 100))
TOML
m() { "$bin" --config "$work/mssante.toml" "$@" 2>/dev/null; }
m domain add hopital.test >/dev/null
printf '%s\n' "$password" | m user add "$user" --password-stdin >/dev/null
"$bin" --config "$work/mssante.toml" serve >/dev/null 2>"$work/mssante.log" &
pids+=($!)
server_pid=$!
wait_port "$tls"

# Dovecot: the same two listeners, high-performance login processes (one per core, many
# clients each; Debian's default of one process per connection stops at 100).
d="$work/dovecot"
dplain="$(free_port)"; dtls="$(free_port)"
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
ssl = yes
ssl_cert = <$d/cert.pem
ssl_key = <$d/key.pem
disable_plaintext_auth = yes
first_valid_uid = 1
mail_location = maildir:$d/mail/%u
default_client_limit = $((n + 200))
passdb {
  driver = static
  args = password=$password
}
userdb {
  driver = static
  args = uid=dovecot gid=dovecot home=$d/home/%u
}
service imap-login {
  service_count = 0
  process_min_avail = $(nproc)
  client_limit = $((n + 100))
  inet_listener imap {
    port = $dplain
  }
  inet_listener imaps {
    port = $dtls
    ssl = yes
  }
}
CONF
dovecot -c "$d/dovecot.conf"
wait_port "$dtls"
master="$(cat "$d/run/master.pid")"
dovecot_rss() { rss_kib "/proc/$master/status" $(pgrep -P "$master" | sed 's|.*|/proc/&/status|'); }

# One server at a time: warm up (a few logins), measure at rest, hold N hostile connections,
# measure again and probe a real user's login meanwhile.
measure() {
  local name="$1" plain_port="$2" tls_port="$3" rss_cmd="$4"
  python3 bench/hostile_load.py probe "$tls_port" "$user" "$password" 5 >/dev/null
  sleep 1
  local before; before="$($rss_cmd)"
  coproc HOLD { python3 bench/hostile_load.py hold "$plain_port" "$tls_port" "$n"; }
  local held; read -r _ held <&"${HOLD[0]}"
  local after; after="$($rss_cmd)"
  local probe; probe="$(python3 bench/hostile_load.py probe "$tls_port" "$user" "$password" 20)"
  exec {HOLD[1]}>&-
  wait "$HOLD_PID" 2>/dev/null || true
  echo "$name $held $before $after $probe"
}
echo "holding $n hostile connections against each server..." >&2
ms="$(measure mssante "$plain" "$tls" "rss_kib /proc/$server_pid/status")"
dv="$(measure dovecot "$dplain" "$dtls" dovecot_rss)"

echo "Hostile unauthenticated connections ($n: half cleartext, half TLS; a line or literal just under the pre-login limit, then a byte every 5 s)"
python3 - "$ms" "$dv" "$(dovecot --version | cut -d' ' -f1)" <<'PY'
import sys
def parse(line):
    name, held, before, after, *probe = line.split()
    p = dict(f.split("=") for f in probe)
    held, before, after = int(held), int(before), int(after)
    return held, before, after, (after - before) / max(held, 1), float(p["p50_ms"]), float(p["max_ms"])
m, d, version = parse(sys.argv[1]), parse(sys.argv[2]), sys.argv[3]
print("  %-20s %6s %10s %10s %12s %10s %10s" % ("server", "held", "RSS before", "RSS held", "KiB/conn", "login p50", "login max"))
for name, r in (("mssante", m), ("Dovecot " + version, d)):
    print("  %-20s %6d %7d MiB %7d MiB %12.1f %7.1f ms %7.1f ms" % (name, r[0], r[1] // 1024, r[2] // 1024, r[3], r[4], r[5]))
print("  memory per connection: mssante / Dovecot = %.2fx (goal: mssante under 64 KiB)" % (m[3] / d[3] if d[3] else float("nan")))
print("  real user's login+SELECT+LOGOUT p50: mssante / Dovecot = %.2fx (goal: mssante under 100 ms;"
      " mssante checks an argon2id hash, the Dovecot reference a plain static password)" % (m[4] / d[4]))
PY
