#!/usr/bin/env bash
# Bundle the dashboard's browser dependencies into the Python package.
# Chart.js is a pinned npm dependency (package.json + package-lock.json at the repo root);
# `npm ci` installs exactly the locked version and the UMD build is copied to
# src/netscope/web/static/vendor/ (gitignored), where the server serves it locally — the page
# never fetches anything from the internet. Idempotent: skips npm when the copy is current.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/netscope/web/static/vendor
src=node_modules/chart.js/dist/chart.umd.js
if [ ! -f "$src" ] || [ package-lock.json -nt "$src" ]; then
    if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        # a bare Debian machine: bring npm from Debian's packages
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "build-web-assets: npm is needed to bundle Chart.js (apt-get install npm, or Node.js)" >&2
        exit 1
    fi
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
    touch "$src"
fi
mkdir -p "$dest"
if ! cmp -s "$src" "$dest/chart.umd.js"; then
    cp "$src" "$dest/chart.umd.js"
    echo "build-web-assets: $dest/chart.umd.js ($(node -p "require('./node_modules/chart.js/package.json').version" 2>/dev/null || echo '?'))"
fi
