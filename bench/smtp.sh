#!/usr/bin/env bash
# SMTP benchmark: 4 KiB messages over 10 parallel TLS connections into the MX, counted as
# committed messages per second (a 250 after the data), for mssante and, in the same run on
# the same machine with the same load generator and certificates, Postfix from Debian
# delivering to a local maildir. Prints both rates, their ratio, and mssante's peak RSS.
#
#   bench/smtp.sh [MESSAGES]      default 4000; needs root (Postfix) and python3
#   BENCH_PERF=1 bench/smtp.sh    also records a perf profile of mssante in /tmp/mssante.perf.data
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-4000}"
command -v postfix >/dev/null || { echo "bench/smtp.sh: install postfix (apt-get install postfix)" >&2; exit 1; }
source bench/lib.sh

pf="$work/postfix"; pport="$(free_port)"
scripts/postfix-instance "$pf" "$pport" "$work/certs/mx.bench.test.pem" \
  "$work/certs/mx.bench.test.key" "$work/data/pki/ca-bundle.pem" hopital.test >/dev/null 2>&1
wait_port "$pport"

# A short warm-up for both, then the measured runs.
load "$mx" --messages 100 --connections 10 --size 4096 >/dev/null 2>&1 || true
[ -n "${BENCH_PERF:-}" ] && { perf record -F 999 -g -p "$server_pid" -o /tmp/mssante.perf.data 2>/dev/null & perfpid=$!; sleep 0.5; }
read -r m_n m_s m_rate < <(load "$mx" --messages "$messages" --connections 10 --size 4096)
[ -n "${BENCH_PERF:-}" ] && { kill -INT $perfpid; wait $perfpid || true; }
read -r p_n p_s p_rate < <(load "$pport" --messages "$messages" --connections 10 --size 4096)
delivered=0
for _ in $(seq 300); do
  delivered="$(find "$pf/mail/maildir/new" -type f 2>/dev/null | wc -l)"
  [ "$delivered" -ge "$p_n" ] && break
  sleep 0.2
done
rss_kib="$(awk '/VmHWM/ {print $2}' "/proc/$server_pid/status")"

echo "SMTP MX, $messages messages of 4 KiB, 10 parallel STARTTLS connections with client certificates"
printf '  %-34s %8s msg/s  (%s messages in %s s)\n' "mssante (committed, SQLite FULL sync)" "$m_rate" "$m_n" "$m_s"
printf '  %-34s %8s msg/s  (%s messages in %s s; %s in the maildir)\n' "Postfix $(postconf -h mail_version) (queued)" "$p_rate" "$p_n" "$p_s" "$delivered"
python3 -c "print(f'  ratio mssante / Postfix: {float(\"$m_rate\") / float(\"$p_rate\"):.2f}x (goal: 1.5x)')"
echo "  mssante peak RSS: $((rss_kib / 1024)) MiB"
