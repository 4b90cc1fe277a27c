#!/usr/bin/env bash
# Load harness: `vflow serve` (release build) on loopback driven by sipp.
#
#   tools/load.sh leave [CONCURRENT…]   each call leaves a 10 s message of real
#                                       speech (default levels: 100 300 550)
#   tools/load.sh short [RATE…]         answer, 1 s prompt, server hangs up
#                                       (default rates: 500 1000 2000 calls/s)
#
# For each level it prints: calls attempted, failed, messages complete (WAV of
# at least 9.5 s), the server's CPU (from /proc/PID/stat, in % of one core, over
# the whole run) and peak memory growth per concurrent call. sipp runs on the
# same 2 cores and is itself the bottleneck near the top levels.
# Every run is bounded (sipp -timeout, fixed call counts) and loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-leave}"; shift || true
command -v sipp >/dev/null || { echo "sipp is missing: apt-get install -y sip-tester" >&2; exit 2; }
cargo build -q --release -p vflow-runtime
BIN="$PWD/target/release/vflow"
PORT="${PORT:-15060}"
HZ=$(getconf CLK_TCK)
work=$(mktemp -d)
trap 'kill "$SRV" 2>/dev/null || true; cp "$work/sipp.out" /tmp/load-sipp.out 2>/dev/null || true; rm -rf "$work"' EXIT

start_server() {
  rm -rf "$work/var"
  cat > "$work/cfg.yaml" <<YAML
node:
  data_dir: $work/var
flows:
  paths: [flows, tests/load/flows]
sip:
  listen: 127.0.0.1:$PORT
  rate_limit: 100000
rtp:
  ports: 30000-39999
  timeout: 60s
shutdown:
  grace: 1s
voicemail:
  limits:
    max_messages: 100000
  mailboxes:
    - id: "201"
      name: Load Test
YAML
  "$BIN" serve --config "$work/cfg.yaml" --log warn 2>"$work/serve.log" &
  SRV=$!
  for _ in $(seq 100); do
    grep -q "error" "$work/serve.log" && { cat "$work/serve.log"; exit 1; }
    ss -lun | grep -q ":$PORT " && break
    sleep 0.1
  done
  sleep 0.3
}

ticks() { awk '{print $14 + $15}' "/proc/$SRV/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SRV/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$SRV/status"; }

# Sum of sipp's "Retrans" column over the last scenario screen.
retransmissions() {
  python3 - "$1" <<'PY'
import re, sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
start = max((i for i, l in enumerate(lines) if "Messages  Retrans" in l), default=None)
total = 0
if start is not None:
    for l in lines[start + 1:]:
        if "---------->" not in l and "<----------" not in l:
            break
        nums = [t for t in re.split(r"[<>-]+", l, maxsplit=1)[-1].split() if t.isdigit()]
        if len(nums) >= 2:
            total += int(nums[1])
print(total)
PY
}

complete_messages() {
  python3 - "$work/var/messages" <<'PY'
import os, sys, wave
root = sys.argv[1]; n = 0
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".wav"):
            w = wave.open(os.path.join(d, f))
            if w.getnframes() / w.getframerate() >= 9.5:
                n += 1
print(n)
PY
}

case "$mode" in
  leave)
    levels=("$@"); [ $# -eq 0 ] && levels=(100 300 550)
    echo "| concurrent | calls | failed | messages ≥9.5 s | server CPU (% of a core) | memory per call (KB) | wall (s) |"
    echo "|---|---|---|---|---|---|---|"
    for n in "${levels[@]}"; do
      start_server
      calls=$((n * 2)); rate=$(python3 -c "print(max(1, round($n / 19.5, 1)))")
      base=$(rss_kb); c0=$(ticks); t0=$(date +%s.%N)
      sipp -sf tests/load/leave_10s.xml -s vm-201 "127.0.0.1:$PORT" -r "$rate" -l "$n" -m "$calls" \
           -timeout 400s -max_socket 20000 -nostdin >"$work/sipp.out" 2>&1 || true
      t1=$(date +%s.%N); c1=$(ticks)
      cpu=$(python3 -c "print(f'{($c1-$c0)/$HZ/($t1-$t0)*100:.1f}')")
      mem=$(python3 -c "print(f'{max(0,$(hwm_kb)-$base)/$n:.0f}')")
      failed=$(grep -E "Failed call" "$work/sipp.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
      kill -TERM "$SRV"; wait "$SRV" 2>/dev/null || true
      echo "| $n | $calls | ${failed:-?} | $(complete_messages) | $cpu | $mem | $(python3 -c "print(f'{$t1-$t0:.0f}')") |"
    done
    ;;
  short)
    rates=("$@"); [ $# -eq 0 ] && rates=(500 1000 2000)
    echo "| rate (calls/s) | calls | failed | retransmissions | server CPU (% of a core) | wall (s) |"
    echo "|---|---|---|---|---|---|"
    for r in "${rates[@]}"; do
      start_server
      calls=$((r * 10))
      c0=$(ticks); t0=$(date +%s.%N)
      sipp -sf tests/load/short_call.xml -s short "127.0.0.1:$PORT" -r "$r" -m "$calls" -l $((r * 4)) \
           -timeout 120s -max_socket 20000 -nostdin >"$work/sipp.out" 2>&1 || true
      t1=$(date +%s.%N); c1=$(ticks)
      cpu=$(python3 -c "print(f'{($c1-$c0)/$HZ/($t1-$t0)*100:.1f}')")
      failed=$(grep -E "Failed call" "$work/sipp.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
      retrans=$(retransmissions "$work/sipp.out")
      kill -TERM "$SRV"; wait "$SRV" 2>/dev/null || true
      echo "| $r | $calls | ${failed:-?} | ${retrans:-?} | $cpu | $(python3 -c "print(f'{$t1-$t0:.0f}')") |"
    done
    ;;
  *) echo "usage: tools/load.sh leave|short [LEVELS…]" >&2; exit 2 ;;
esac
