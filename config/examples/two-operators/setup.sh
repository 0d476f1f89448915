#!/usr/bin/env bash
# Prepares the two-operators example in this folder: one TEST PKI (in operator A's data
# directory) issues both operators' certificates, each operator gets its domain, one doctor
# and the whitelist. Run it once; `./setup.sh --reset` starts over.
#
# MSSANTE may name the mssante binary; by default it is built and run with cargo.
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--reset" ]; then rm -rf data-a data-b tls; fi
if [ -e data-a ] || [ -e data-b ]; then
  echo "setup.sh: already set up (./setup.sh --reset to start over)" >&2
  exit 1
fi
if [ -n "${MSSANTE:-}" ]; then
  mssante() { "$MSSANTE" "$@"; }
else
  mssante() { cargo run --release --quiet -- "$@"; }
fi

# 1. The TEST PKI in data-a issues both operators' certificates; data-b gets its own TEST PKI
#    (it issues Dr Durand's S/MIME keys). Plain dev defaults: the configs need these files.
mssante --data data-a pki issue-server mx.operateur-a.test --organisation "OPERATEUR A" --out tls
mssante --data data-a pki issue-server mx.operateur-b.test --organisation "OPERATEUR B" --out tls
mssante --data data-b pki show >/dev/null

# 2. A domain and a doctor at each operator.
mssante --config operateur-a.toml domain add operateur-a.test
mssante --config operateur-a.toml user add dr.martin@operateur-a.test --idnat 810001111111 \
  --name "Paul MARTIN" --password-stdin <<< "martin-password-A"
mssante --config operateur-b.toml domain add operateur-b.test
mssante --config operateur-b.toml user add dr.durand@operateur-b.test --idnat 810002222222 \
  --name "Claire DURAND" --password-stdin <<< "durand-password-B"

# 3. The same trust space at both.
mssante --config operateur-a.toml trust import listeblanche.xml
mssante --config operateur-b.toml trust import listeblanche.xml

# 4. Each operator learns the other doctor's encryption certificate (the national directory
#    will publish them): mail between the doctors goes signed and encrypted.
mssante --config operateur-b.toml key cert dr.durand@operateur-b.test > tls/dr.durand.pem
mssante --config operateur-a.toml cert add dr.durand@operateur-b.test tls/dr.durand.pem
mssante --config operateur-a.toml key cert dr.martin@operateur-a.test > tls/dr.martin.pem
mssante --config operateur-b.toml cert add dr.martin@operateur-a.test tls/dr.martin.pem
echo "setup.sh: ready; see README.md for the next commands"
