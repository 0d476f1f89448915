# Shared by the benchmarks (sourced, not run): builds mssante in release mode and starts it
# in dev mode in a temp dir with an MX listener, the domain hopital.test, the mailbox
# dr.bench@hopital.test, an operator certificate for bench.test (whitelisted) for the load
# generator, and cleanup on exit. Sets: bin work mx server_pid pids[] m() load().
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mssante-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/mssante"
# bench_binary NAME: builds benches/NAME.rs with the release profile, prints its path.
bench_binary() {
  cargo build --release --quiet --bench "$1" --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == sys.argv[1]:
        print(m["executable"])' "$1"
}

work="$(mktemp -d /tmp/mssante-bench.XXXXXX)"
chmod 755 "$work"
pids=()
bench_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -d "$work/postfix/etc" ]; then postfix -c "$work/postfix/etc" stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap bench_cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

mx="$(free_port)"
cat > "$work/mssante.toml" <<TOML
mode = "dev"
data_dir = "data"
[[listener]]
protocol = "mx"
bind = "127.0.0.1:$mx"
tls = "starttls"
max_connections = 100
TOML
m() { "$bin" --config "$work/mssante.toml" "$@" 2>/dev/null; }
m domain add hopital.test >/dev/null
m user add dr.bench@hopital.test --no-password >/dev/null
dn="$(m pki issue-server mx.bench.test --organisation "BENCH" --out "$work/certs" | sed -n 's/^subject: *//p')"
cat > "$work/liste.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema">
  <Domaine><Nom>bench.test</Nom><DNCertificatOperateur>$dn</DNCertificatOperateur></Domaine>
</ListeBlanche>
XML
m trust import "$work/liste.xml" >/dev/null
"$bin" --config "$work/mssante.toml" serve >/dev/null 2>"$work/mssante.log" &
pids+=($!)
server_pid=$!
wait_port "$mx"

# load PORT [extra smtp_load.py arguments]: prints "messages seconds rate".
load() {
  local port="$1"; shift
  python3 bench/smtp_load.py --port "$port" --cert "$work/certs/mx.bench.test.pem" \
    --key "$work/certs/mx.bench.test.key" --sender "bench@bench.test" \
    --to dr.bench@hopital.test "$@"
}
