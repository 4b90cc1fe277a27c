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
#
# CPU % over wall time moves with whatever else runs on the machine; the CPU
# *time* columns (per call-second, per call) are what to compare between runs.
#
# Environment:
#   VFLOW_BIN=PATH    run this binary instead of building (e.g. to compare
#                     two builds in one session)
#   WINDOW=START:LEN  also measure a steady state, START seconds after sipp
#                     starts: the server's CPU over LEN seconds, then its
#                     syscalls per second over 5 more (`perf stat`, if
#                     installed); written to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-leave}"; shift || true
command -v sipp >/dev/null || { echo "sipp is missing: apt-get install -y sip-tester" >&2; exit 2; }
if [ -n "${VFLOW_BIN:-}" ]; then
  BIN="$VFLOW_BIN"
else
  cargo build -q --release -p vflow-runtime
  BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/vflow"
fi
PORT="${PORT:-15060}"
SIPP_PORT="${SIPP_PORT:-15070}"
HZ=$(getconf CLK_TCK)
work=$(mktemp -d)
trap 'kill "$SRV" 2>/dev/null || true; cp "$work/sipp.out" /tmp/load-sipp.out 2>/dev/null || true; cp "$work/stat.csv" /tmp/load-stat.csv 2>/dev/null || true; cp "$work/serve.log" /tmp/load-serve.log 2>/dev/null || true; rm -rf "$work"' EXIT

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
  "$BIN" serve --config "$work/cfg.yaml" --log "${LOG:-warn}" 2>"$work/serve.log" &
  SRV=$!
  for _ in $(seq 100); do
    grep -q "error" "$work/serve.log" && { cat "$work/serve.log"; exit 1; }
    ss -lun | grep -q ":$PORT " && break
    sleep 0.1
  done
  sleep 0.3
}

ticks() { awk '{print $14 + $15}' "/proc/$SRV/stat"; }
# Nanoseconds the server's threads were ready to run but waited for a core
# (run-queue delay, /proc/PID/task/*/schedstat): high when something else,
# such as sipp, keeps both cores busy.
waited_ns() { cat /proc/"$SRV"/task/*/schedstat 2>/dev/null | awk '{s += $2} END {print s + 0}'; }

# The steady-state window (WINDOW=START:LEN), in the background during a run:
# the server's CPU over LEN seconds, then its syscalls over 5 more seconds
# (tracing syscalls slows the server, so the two are not measured together).
window() {
  [ -n "${WINDOW:-}" ] || return 0
  local start=${WINDOW%%:*} len=${WINDOW##*:} w0 w1
  sleep "$start"
  w0=$(ticks); sleep "$len"; w1=$(ticks)
  echo "window ${start}s+${len}s: server CPU $(python3 -c "print(f'{($w1-$w0)/$HZ/$len*100:.1f}')") % of a core" >&2
  command -v perf >/dev/null || return 0
  perf stat -x, -p "$SRV" -e 'syscalls:sys_enter_recvfrom,syscalls:sys_enter_recvmsg,syscalls:sys_enter_recvmmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_write,syscalls:sys_enter_futex' \
    -- sleep 5 2>"$work/perf.csv" >/dev/null || true
  awk -F, '$1 ~ /^[0-9]+$/ && $1 > 0 {sub("syscalls:sys_enter_","",$3); printf "  %-12s %9.0f /s\n", $3, $1/5}' "$work/perf.csv" >&2
}

# Who falls behind: every 0.2 s, the receive queue and drop count of the
# server's SIP socket and of sipp's (from `ss`); the maxima and last drop
# counts go to $work/queues.
queues() {
  : > "$work/queues.raw"
  while kill -0 "$SIPP" 2>/dev/null; do
    ss -Huanm "( sport = :$PORT or sport = :$SIPP_PORT )" 2>/dev/null >> "$work/queues.raw" || true
    sleep 0.2
  done
  python3 - "$work/queues.raw" "$PORT" "$SIPP_PORT" > "$work/queues" <<'PY'
import re, sys
text = open(sys.argv[1]).read().split("\n")
stats = {}
cur = None
for line in text:
    f = line.split()
    if len(f) >= 4 and f[0] == "UNCONN":
        cur = f[3].rsplit(":", 1)[-1]
        q = stats.setdefault(cur, [0, 0])
        q[0] = max(q[0], int(f[1]))
    m = re.search(r"\bd(\d+)\)", line)
    if m and cur:
        stats[cur][1] = int(m.group(1))
srv = stats.get(sys.argv[2], [0, 0]); sipp = stats.get(sys.argv[3], [0, 0])
print(f"{srv[0] // 1024} KiB / {srv[1]} | {sipp[0] // 1024} KiB / {sipp[1]}")
PY
}

# sipp's call setup rate: created calls per second, the mean over its full
# one-second statistics periods (-trace_stat -fd 1) before the last call.
setup_rate() {
  python3 - "$1" "$2" <<'PY'
import sys
rows = [l.rstrip("\n").split(";") for l in open(sys.argv[1], errors="replace") if l.strip()]
total = int(sys.argv[2])
head, rows = rows[0], rows[1:]
col = {name: i for i, name in enumerate(head)}
def secs(t):
    f = [int(x) for x in t.split(":")]  # HH:MM:SS, or HH:MM:SS:µs
    return f[0] * 3600 + f[1] * 60 + f[2] + (f[3] / 1e6 if len(f) > 3 else 0)
rates = []
for r in rows:
    if int(r[col["OutgoingCall(C)"]]) >= total:
        break
    p = secs(r[col["ElapsedTime(P)"]])
    if p >= 0.9:
        rates.append(int(r[col["OutgoingCall(P)"]]) / p)
rates = rates[1:] or rates  # the first period includes sipp's start
print(f"{sum(rates) / len(rates):.0f}" if rates else "?")
PY
}

# What the server's RTP counts say, over all calls: packets received per call
# (mean and fewest; the speech is 500 packets), packets missing (sequence gaps:
# dropped on the way, in a full socket buffer, or skipped by the sender) and
# too late to use. Few received with none missing means the caller stopped
# sending (hung up) before its speech was out: a late sender.
rtp_counts() {
  python3 - "$work/serve.log" <<'PY'
import re, sys
got, lost, late = [], 0, 0
for line in open(sys.argv[1], errors="replace"):
    if "call finished" in line:
        f = dict(re.findall(r"(rtp_\w+)=(\d+)", line))
        got.append(int(f.get("rtp_received", 0)))
        lost += int(f.get("rtp_lost", 0)); late += int(f.get("rtp_late", 0))
mean = sum(got) / len(got) if got else 0
print(f"{mean:.0f} ({min(got, default=0)}) / {lost} / {late}")
PY
}

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
root = sys.argv[1]; lengths = []
for d, _, files in os.walk(root):
    for f in files:
        if f.endswith(".wav"):
            w = wave.open(os.path.join(d, f))
            lengths.append(w.getnframes() / w.getframerate())
n = sum(1 for x in lengths if x >= 9.5)
print(f"{n} (shortest {min(lengths):.1f} s)" if lengths else "0")
PY
}

case "$mode" in
  leave)
    levels=("$@"); [ $# -eq 0 ] && levels=(100 300 550)
    echo "| concurrent | calls | failed | messages ≥9.5 s | server CPU (% of a core) | CPU per call-second (µs) | memory per call (KB) | sipp CPU (% of a core) | server waiting for a core (% of the time) | RTP at the server: received per call, mean (fewest) / missing / late | wall (s) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for n in "${levels[@]}"; do
      # The call log lines carry each call's RTP counts.
      LOG="warn,vflow_runtime::server::call=info" start_server
      calls=$((n * 2)); rate=$(python3 -c "print(max(1, round($n / 19.5, 1)))")
      base=$(rss_kb); c0=$(ticks); t0=$(date +%s.%N); w0=$(waited_ns)
      window & WIN=$!
      timer=(); [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "%U %S" -o "$work/sipp.time")
      "${timer[@]}" sipp -sf tests/load/leave_10s.xml -s vm-201 "127.0.0.1:$PORT" -r "$rate" -l "$n" -m "$calls" \
           -timeout 400s -max_socket 20000 -nostdin >"$work/sipp.out" 2>&1 || true
      t1=$(date +%s.%N); c1=$(ticks); w1=$(waited_ns); wait "$WIN" 2>/dev/null || true
      waited=$(python3 -c "print(f'{($w1-$w0)/1e9/($t1-$t0)*100:.1f}')")
      cpu=$(python3 -c "print(f'{($c1-$c0)/$HZ/($t1-$t0)*100:.1f}')")
      sipp_cpu=$(python3 -c "u, s = map(float, open('$work/sipp.time').read().split()[-2:]); print(f'{(u+s)/($t1-$t0)*100:.1f}')" 2>/dev/null || echo "?")
      # A call lasts about 19.4 s (answer, 8.6 s of greeting and beep, 10.6 s of speech, BYE).
      per=$(python3 -c "print(f'{($c1-$c0)/$HZ/($calls*19.4)*1e6:.0f}')")
      mem=$(python3 -c "print(f'{max(0,$(hwm_kb)-$base)/$n:.0f}')")
      failed=$(grep -E "Failed call" "$work/sipp.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
      kill -TERM "$SRV"; wait "$SRV" 2>/dev/null || true
      echo "| $n | $calls | ${failed:-?} | $(complete_messages) | $cpu | $per | $mem | $sipp_cpu | $waited | $(rtp_counts) | $(python3 -c "print(f'{$t1-$t0:.0f}')") |"
    done
    ;;
  short)
    rates=("$@"); [ $# -eq 0 ] && rates=(500 1000 2000)
    echo "| rate (calls/s) | sipp reached (calls/s) | calls | failed | retransmissions | server CPU (% of a core) | CPU per call (µs) | sipp CPU (% of a core) | server SIP socket: max queue / drops | sipp socket: max queue / drops | wall (s) |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for r in "${rates[@]}"; do
      start_server
      calls=$((r * 10))
      c0=$(ticks); t0=$(date +%s.%N)
      window & WIN=$!
      # sipp's own CPU time, if GNU time is installed.
      timer=(); [ -x /usr/bin/time ] && timer=(/usr/bin/time -f "%U %S" -o "$work/sipp.time")
      "${timer[@]}" sipp -sf tests/load/short_call.xml -s short "127.0.0.1:$PORT" -p "$SIPP_PORT" -r "$r" -m "$calls" -l $((r * 4)) \
           -trace_stat -stf "$work/stat.csv" -fd 1 -timeout 120s -max_socket 20000 -nostdin >"$work/sipp.out" 2>&1 &
      SIPP=$!
      queues & QS=$!
      wait "$SIPP" || true
      t1=$(date +%s.%N); c1=$(ticks); wait "$WIN" "$QS" 2>/dev/null || true
      sipp_cpu=$(python3 -c "u, s = map(float, open('$work/sipp.time').read().split()[-2:]); print(f'{(u+s)/($t1-$t0)*100:.1f}')" 2>/dev/null || echo "?")
      cpu=$(python3 -c "print(f'{($c1-$c0)/$HZ/($t1-$t0)*100:.1f}')")
      per=$(python3 -c "print(f'{($c1-$c0)/$HZ/$calls*1e6:.0f}')")
      failed=$(grep -E "Failed call" "$work/sipp.out" | tail -1 | awk -F'|' '{gsub(/ /,"",$3); print $3}')
      retrans=$(retransmissions "$work/sipp.out")
      kill -TERM "$SRV"; wait "$SRV" 2>/dev/null || true
      echo "| $r | $(setup_rate "$work/stat.csv" "$calls" 2>/dev/null || echo "?") | $calls | ${failed:-?} | ${retrans:-?} | $cpu | $per | $sipp_cpu | $(cat "$work/queues") | $(python3 -c "print(f'{$t1-$t0:.0f}')") |"
    done
    ;;
  *) echo "usage: tools/load.sh leave|short [LEVELS…]" >&2; exit 2 ;;
esac
