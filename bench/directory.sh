#!/usr/bin/env bash
# National directory benchmark: a generated extract of ROWS rows (default 600,000, the
# national size) imported with `mssante directory import-extract` into a fresh slapd
# (scripts/dev-directory), next to OpenLDAP's own `ldapadd` loading the same entries as LDIF
# into another fresh slapd in the same run (the reference: rows/s, and the ratio); peak
# memory of the import; then recipient lookups by address on the imported directory
# (benches/directory_lookup.rs: p50, p99). Goals: the import within 5 minutes, lookups p99
# under 5 ms.
#
#   bench/directory.sh [ROWS]     needs slapd, ldap-utils, python3 (./scripts/test installs them)
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-600000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mssante-target}"
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/mssante"
lookup="$(cargo build --release --quiet --bench directory_lookup --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "directory_lookup":
        print(m["executable"])')"
base="dc=mssante,dc=test"
work="$(mktemp -d /tmp/mssante-bench-directory.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
directory() { # directory NAME: a fresh slapd in $work/NAME, its port in $port (not a
  # subshell, so that cleanup knows its pid)
  port="$(free_port)"
  ./scripts/dev-directory --port "$port" --dir "$work/$1" >/dev/null 2>&1 &
  pids+=($!)
  wait_port "$port"
}

echo "generating $rows rows..." >&2
python3 bench/gen_extract.py "$rows" "$work/extract.txt" "$work/extract.ldif" "$work/addresses.txt" "$base"

# mssante: the extract into a fresh directory, timed, with its peak memory.
directory mssante
cat > "$work/mssante.toml" <<TOML
mode = "dev"
[directory]
url = "ldap://127.0.0.1:$port"
base_dn = "$base"
bind_dn = "cn=admin,$base"
bind_password_file = "$work/mssante/admin.secret"
TOML
"$bin" --config "$work/mssante.toml" --data "$work/data" domain list >/dev/null 2>&1
/usr/bin/time -f "%e %M" -o "$work/time.mssante" \
  "$bin" --config "$work/mssante.toml" --data "$work/data" directory import-extract "$work/extract.txt" \
  >"$work/import.out" 2>"$work/import.err"
read -r secs kib < "$work/time.mssante"

# The reference: ldapadd, the same entries, into another fresh directory.
mssante_port="$port"
directory reference
ref_port="$port"
port="$mssante_port"
/usr/bin/time -f "%e %M" -o "$work/time.ldapadd" \
  ldapadd -x -c -H "ldap://127.0.0.1:$ref_port" -D "cn=admin,$base" -y "$work/reference/admin.secret" \
  -f "$work/extract.ldif" >/dev/null 2>"$work/ldapadd.err"
read -r ref_secs ref_kib < "$work/time.ldapadd"

lookups="$("$lookup" "ldap://127.0.0.1:$port" "$base" "cn=admin,$base" "$work/mssante/admin.secret" "$work/addresses.txt" 20000 2>/dev/null)"

python3 - "$rows" "$secs" "$kib" "$ref_secs" "$ref_kib" "$lookups" "$(tail -1 "$work/import.out")" <<'PY'
import sys
rows, secs, kib, ref_secs, ref_kib, lookups, summary = sys.argv[1:8]
rows, secs, ref_secs = int(rows), float(secs), float(ref_secs)
rate, ref_rate = rows / secs, rows / ref_secs
fields = lookups.split()
stats = dict(zip(fields[0::2], fields[1::2]))
print(f"import    mssante {rate:8.0f} rows/s ({secs:.1f} s, peak {int(kib) // 1024} MiB)   "
      f"ldapadd {ref_rate:8.0f} rows/s ({ref_secs:.1f} s)   ratio {rate / ref_rate:.2f}   "
      f"goal: {rows} rows within 300 s: {'met' if secs <= 300 else 'NOT met'}")
print(f"          {summary}")
p99 = float(stats.get("p99_ms", "nan"))
print(f"lookups   {stats.get('lookups')} by address: p50 {stats.get('p50_ms')} ms, p99 {p99} ms, "
      f"max {stats.get('max_ms')} ms   goal: p99 under 5 ms: {'met' if p99 < 5 else 'NOT met'}")
PY
