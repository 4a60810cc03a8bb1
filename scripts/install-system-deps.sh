#!/usr/bin/env bash
# Install the Debian tools the test suite compares NetScope against (tcpdump, tshark) and
# tcpreplay, which scripts/perf/live_replay.sh uses to replay traces on loopback, and chromium
# for the dashboard's browser tests (tests/web).
# Idempotent: does nothing when they are already there. Needs root (or sudo).
set -euo pipefail

packages=()
command -v tcpdump >/dev/null 2>&1 || packages+=(tcpdump)
command -v tshark >/dev/null 2>&1 || packages+=(tshark)
command -v tcpreplay >/dev/null 2>&1 || packages+=(tcpreplay)
# The dashboard's browser tests drive Debian's chromium through playwright (no browser download).
[ -x /usr/bin/chromium ] || packages+=(chromium fonts-dejavu-core)
# IPFIX export (docs/ipfix.md): nfcapd/nfdump read our flows back in tests; softflowd and
# nfpcapd are the side-by-side flow exporters of the benchmark suite.
command -v nfcapd >/dev/null 2>&1 || packages+=(nfdump)
command -v softflowd >/dev/null 2>&1 || packages+=(softflowd)

if [ ${#packages[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "install-system-deps: need root to install: ${packages[*]}" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-system-deps: installed ${packages[*]}"
