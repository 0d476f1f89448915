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

# One server and one profile at a time: warm up (a few logins), measure at rest, hold N
# hostile connections, measure again and probe a real user's login meanwhile. Profiles:
# "worst" (a line or literal just under mssante's pre-login limits, then a byte every 5 s)
# and "idle" (an unfinished "a NO", one more octet every 5 s: what every server must hold).
measure() {
  local name="$1" plain_port="$2" tls_port="$3" rss_cmd="$4" profile="$5"
  python3 bench/hostile_load.py probe "$tls_port" "$user" "$password" 5 >/dev/null
  sleep 1
  local before; before="$($rss_cmd)"
  coproc HOLD { python3 bench/hostile_load.py hold "$plain_port" "$tls_port" "$n" "$profile"; }
  local held; read -r _ held <&"${HOLD[0]}"
  local after; after="$($rss_cmd)"
  # Connections the server still holds (it may have closed some: they then cost nothing).
  local open; open="$(ss -Htn state established "( sport = :$plain_port or sport = :$tls_port )" | wc -l)"
  local probe; probe="$(python3 bench/hostile_load.py probe "$tls_port" "$user" "$password" 20)"
  exec {HOLD[1]}>&-
  wait "$HOLD_PID" 2>/dev/null || true
  sleep 2
  echo "$name/$profile $open $before $after $probe"
}
echo "holding $n hostile connections against each server, two profiles..." >&2
results=()
for profile in idle worst; do
  results+=("$(measure mssante "$plain" "$tls" "rss_kib /proc/$server_pid/status" "$profile")")
  results+=("$(measure dovecot "$dplain" "$dtls" dovecot_rss "$profile")")
done

echo "Hostile unauthenticated connections: $n opened from $n loopback addresses, half cleartext, half TLS"
echo "('open': still held by the server; 'worst': a line or literal just under mssante's pre-login limits, then a byte every 5 s; 'idle': an unfinished command line)"
python3 - "$(dovecot --version | cut -d' ' -f1)" "${results[@]}" <<'PY'
import sys
version, rows = sys.argv[1], sys.argv[2:]
# Each server's memory is counted from its RSS at rest before the first profile (memory a
# profile allocated and released is reused by the next, and would hide its cost).
fresh = {}
def parse(line):
    name, opened, before, after, *probe = line.split()
    p = dict(f.split("=") for f in probe)
    opened, before, after = int(opened), int(before), int(after)
    base = fresh.setdefault(name.split("/")[0], before)
    per = (after - base) / opened if opened else float("nan")
    return name, opened, base, after, per, float(p["p50_ms"]), float(p["max_ms"])
r = {row[0]: row for row in map(parse, rows)}
print("  %-22s %6s %10s %10s %10s %10s %10s" % ("server/profile", "open", "RSS fresh", "RSS held", "KiB/conn", "login p50", "login max"))
for key in ("mssante/worst", "dovecot/worst", "mssante/idle", "dovecot/idle"):
    name, opened, before, after, per, p50, pmax = r[key]
    label = key.replace("dovecot", "Dovecot " + version)
    print("  %-22s %6d %7d MiB %7d MiB %10.1f %7.1f ms %7.1f ms" % (label, opened, before // 1024, after // 1024, per, p50, pmax))
m, d = r["mssante/idle"], r["dovecot/idle"]
print("  idle profile, memory per held connection: mssante / Dovecot = %.2fx" % (m[4] / d[4]))
print("  worst profile: mssante %.1f KiB per held connection (goal: under 64 KiB)" % r["mssante/worst"][4])
print("  real user's login+SELECT+LOGOUT p50 under the worst profile: mssante %.1f ms (goal: under 100 ms),"
      " Dovecot %.1f ms: %.2fx (mssante checks an argon2id hash, the Dovecot reference a plain static password)"
      % (r["mssante/worst"][5], r["dovecot/worst"][5], r["mssante/worst"][5] / r["dovecot/worst"][5]))
PY
