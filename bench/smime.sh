#!/usr/bin/env bash
# S/MIME inbound benchmark: messages signed then encrypted by another professional (4 KiB
# body, RSA-2048 keys, AES-256-GCM with RSA-OAEP, SHA-256 signature), decrypted with the
# mailbox's escrowed key, verified and committed. Measured twice:
#   - the pipeline (decrypt + verify + store): the server's delivery code fed by 10 tasks in
#     one process on all cores (benches/smime_inbound.rs); this is the figure with the goal.
#     It also runs without the commit (decrypt + verify alone), to show the store's share;
#   - end to end: the same messages into the MX over 10 parallel STARTTLS connections, the
#     250 after the commit, with the Python load generator sharing the cores.
# Each is printed as messages per second next to `openssl speed -multi N rsa2048`
# private-key operations per second, measured in the same run with all N cores: each message
# costs one private-key operation (its decryption), so the ratio tells how close the pipeline
# comes to the machine's RSA ceiling. Goal (pipeline): 0.75.
#
#   bench/smime.sh [MESSAGES]     default 2000; needs python3 and openssl
#   BENCH_PERF=1 bench/smime.sh   also records a perf profile of mssante in /tmp/mssante.perf.data
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-2000}"
source bench/lib.sh
cores="$(nproc)"

# The recipient's escrowed certificate, and a sender with a TEST PKI signature key.
m key cert dr.bench@hopital.test > "$work/recipient.pem"
m pki issue-person --idnat 810000000001 --surname CONFRERE --given-name BENCH \
  --use signature --email bench@bench.test --out "$work/sender" >/dev/null
python3 - "$work/entity.txt" <<'PY'
import sys
line = "Compte rendu de consultation, resultats normaux.".ljust(76, ".") + "\r\n"
body = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + line * (4096 // len(line))
open(sys.argv[1], "w", newline="").write(body)
PY
openssl cms -sign -binary -crlfeol -md sha256 -signer "$work/sender/810000000001-signature.pem" \
  -inkey "$work/sender/810000000001-signature.key" -in "$work/entity.txt" -out "$work/signed.eml"
openssl cms -encrypt -binary -crlfeol -aes-256-gcm -in "$work/signed.eml" \
  -recip "$work/recipient.pem" -keyopt rsa_padding_mode:oaep -keyopt rsa_oaep_md:sha256 \
  -out "$work/encrypted.eml"
{ printf 'From: bench@bench.test\r\nTo: dr.bench@hopital.test\r\nSubject: bench\r\n'; cat "$work/encrypted.eml"; } > "$work/message.eml"

load "$mx" --messages 50 --connections 10 --message "$work/message.eml" >/dev/null
[ -n "${BENCH_PERF:-}" ] && { perf record -F 999 -g -p "$server_pid" -o /tmp/mssante.perf.data 2>/dev/null & perfpid=$!; sleep 0.5; }
read -r m_n m_s m_rate < <(load "$mx" --messages "$messages" --connections 10 --message "$work/message.eml")
[ -n "${BENCH_PERF:-}" ] && { kill -INT $perfpid; wait $perfpid || true; }
pipeline="$(bench_binary smime_inbound)"
read -r p_n p_s p_rate < <("$pipeline" \
  "$work/mssante.toml" "$work/message.eml" dr.bench@hopital.test "$messages" 10)
read -r o_n o_s o_rate < <("$pipeline" \
  "$work/mssante.toml" "$work/message.eml" dr.bench@hopital.test "$messages" 10 --no-commit)
rss_kib="$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")"
if grep -q "delivered undecrypted" "$work/mssante.log"; then
  echo "bench/smime.sh: some messages were not decrypted; see the log" >&2
  exit 1
fi
rsa="$(openssl speed -multi "$cores" -seconds 3 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ {print $6}')"

echo "S/MIME inbound, $messages messages (4 KiB, signed + AES-256-GCM/RSA-OAEP), $cores cores"
printf '  %-44s %8s op/s\n' "openssl speed -multi $cores rsa2048 (sign)" "$rsa"
ratio() { python3 -c "print(f'{float(\"$1\") / float(\"$rsa\"):.2f}')"; }
printf '  %-44s %8s msg/s  ratio %s (goal 0.75)\n' "pipeline: decrypt + verify + commit, 10 tasks" "$p_rate" "$(ratio "$p_rate")"
printf '  %-44s %8s msg/s  ratio %s\n' "  of which decrypt + verify alone (no commit)" "$o_rate" "$(ratio "$o_rate")"
printf '  %-44s %8s msg/s  ratio %s\n' "end to end: MX, 10 STARTTLS connections" "$m_rate" "$(ratio "$m_rate")"
echo "  mssante peak RSS: $((rss_kib / 1024)) MiB"
