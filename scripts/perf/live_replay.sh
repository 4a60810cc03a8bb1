#!/usr/bin/env bash
# Live capture throughput: replay a generated trace on loopback with tcpreplay at increasing
# packet rates and report, for each rate, the kernel drops seen by
#   netscope -i lo --quiet --stats   (AF_PACKET ring backend, then the libpcap backend)
#   tcpdump -i lo -w /dev/null        (the reference)
# and the highest rate each one sustained with zero kernel drops.
#
# Usage:  sudo scripts/perf/live_replay.sh [RATE ...]
#   RATE          packets/s to try, or "max" for tcpreplay --topspeed
#                 (default: 50000 100000 200000 400000 800000 max)
#   BUFFER_MB=N   the same capture buffer for everyone: netscope capture.buffer_size_mb=N
#                 and tcpdump -B N*1024 (default: each tool's own default, netscope 32 MiB,
#                 tcpdump/libpcap 2 MiB)
#   REPLAY_SECONDS=3  replay time per rate (packets sent = RATE x REPLAY_SECONDS)
#   TRACE=PATH    trace to replay (default: generated once into $WORK, small packets)
#   WORK=DIR      scratch directory (default: /tmp/netscope-live-replay)
#   PY=PATH       python with netscope installed (default: .venv/bin/python)
# Needs root (AF_PACKET capture and injection), tcpreplay and tcpdump
# (scripts/install-system-deps.sh installs both). Other traffic on lo adds to the counts.
set -euo pipefail

cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-/tmp/netscope-live-replay}
SECONDS_PER_RATE=${REPLAY_SECONDS:-3}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(50000 100000 200000 400000 800000 max)
BUFFER_MB=${BUFFER_MB:-}
NS_ARGS=()
TD_ARGS=()
if [ -n "$BUFFER_MB" ]; then
    printf '[capture]\nbuffer_size_mb = %d\n' "$BUFFER_MB" >"$WORK/buffer.toml"
    NS_ARGS=(--config "$WORK/buffer.toml")
    TD_ARGS=(-B $(( BUFFER_MB * 1024 )))
fi
mkdir -p "$WORK"
TRACE=${TRACE:-$WORK/replay-small.pcap}

for tool in tcpreplay tcpdump; do
    command -v "$tool" >/dev/null || { echo "live_replay: $tool not found (scripts/install-system-deps.sh)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "live_replay: run as root" >&2; exit 1; }

if [ ! -f "$TRACE" ]; then
    echo "generating $TRACE ..." >&2
    "$PY" -m netscope.gen "$TRACE" --packets 200000 --flows 2000 --seed 5 --small >/dev/null
fi
"$PY" -c "import netscope.engine as e; e.warm_up(need=(\"capture\",))"  # compile outside the measurement

# wait_for FILE PATTERN: until PATTERN shows up in FILE (start-up line), 60 s at most
wait_for() {
    for _ in $(seq 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "live_replay: timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

# replay RATE: send RATE x SECONDS packets at RATE pps (or 2M at top speed); prints the
# achieved pps
replay() {
    local speed count
    if [ "$1" = max ]; then
        speed=(--topspeed); count=2000000
    else
        speed=(--pps="$1"); count=$(( $1 * SECONDS_PER_RATE ))
    fi
    tcpreplay --intf1=lo "${speed[@]}" --limit="$count" --loop=0 "$TRACE" 2>&1 |
        awk '/Rated:/ { for (i = 1; i <= NF; i++) if ($i ~ /pps/) { print int($(i-1)); exit } }'
}

# run_netscope BACKEND RATE -> "achieved received dropped"
run_netscope() {
    local backend=$1 rate=$2 out="$WORK/ns.out" err="$WORK/ns.err"
    NETSCOPE_CAPTURE_BACKEND=$backend "$PY" -m netscope -i lo --quiet --stats "${NS_ARGS[@]}" >"$out" 2>"$err" &
    local pid=$!
    wait_for "$err" "capturing on"
    sleep 0.3
    local achieved; achieved=$(replay "$rate")
    sleep 0.5
    kill -INT "$pid"; wait "$pid" || true
    local recv drop
    recv=$(awk -F': *' '/Kernel received:/ {print $2}' "$out")
    drop=$(awk -F': *' '/Kernel dropped:/ {print $2}' "$out")
    echo "$achieved ${recv:-?} ${drop:-?}"
}

# run_tcpdump RATE -> "achieved received dropped"
run_tcpdump() {
    local rate=$1 err="$WORK/td.err"
    tcpdump -i lo "${TD_ARGS[@]}" -w /dev/null >"$err" 2>&1 &
    local pid=$!
    wait_for "$err" "listening on"
    sleep 0.3
    local achieved; achieved=$(replay "$rate")
    sleep 0.5
    kill -INT "$pid"; wait "$pid" || true
    local recv drop
    recv=$(awk '/packets received by filter/ {print $1}' "$err")
    drop=$(awk '/packets dropped by kernel/ {print $1}' "$err")
    echo "$achieved ${recv:-?} ${drop:-?}"
}

declare -A best=([afpacket]=0 [libpcap]=0 [tcpdump]=0)
echo "buffer: ${BUFFER_MB:-default} MiB, ${SECONDS_PER_RATE} s per rate, trace $TRACE"
printf '%-10s %-10s | %-22s | %-22s | %-22s\n' "rate" "sent pps" \
    "afpacket recv/kdrop" "libpcap recv/kdrop" "tcpdump recv/kdrop"
for rate in "${RATES[@]}"; do
    read -r sent_a recv_a drop_a < <(run_netscope afpacket "$rate")
    read -r _ recv_l drop_l < <(run_netscope libpcap "$rate")
    read -r _ recv_t drop_t < <(run_tcpdump "$rate")
    printf '%-10s %-10s | %-22s | %-22s | %-22s\n' "$rate" "$sent_a" \
        "$recv_a/$drop_a" "$recv_l/$drop_l" "$recv_t/$drop_t"
    # "max" ranks by the rate tcpreplay achieved
    r=$rate; [ "$rate" = max ] && r=$sent_a
    [ "$drop_a" = 0 ] && [ "$r" -gt "${best[afpacket]}" ] && best[afpacket]=$r
    [ "$drop_l" = 0 ] && [ "$r" -gt "${best[libpcap]}" ] && best[libpcap]=$r
    [ "$drop_t" = 0 ] && [ "$r" -gt "${best[tcpdump]}" ] && best[tcpdump]=$r
done
echo
echo "highest rate with zero kernel drops (pps):"
echo "  netscope afpacket: ${best[afpacket]}"
echo "  netscope libpcap:  ${best[libpcap]}"
echo "  tcpdump:           ${best[tcpdump]}"
