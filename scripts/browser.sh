#!/usr/bin/env bash
# The browser journeys drive Debian's Chromium through Playwright, and the in-product kit's docs
# test runs their Node snippet (docs/in-product.md): install either if missing.
set -euo pipefail
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "Missing: ${missing[*]}; installing Debian's package(s)"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
[ -x "$CHROMIUM" ] || { echo "ERROR: could not install Chromium at $CHROMIUM" >&2; exit 1; }
command -v node >/dev/null 2>&1 || { echo "ERROR: could not install Node (Debian's nodejs)" >&2; exit 1; }
