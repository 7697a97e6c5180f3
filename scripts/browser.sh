#!/usr/bin/env bash
# The browser journeys drive Debian's Chromium through Playwright; install it if missing.
set -euo pipefail
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then exit 0; fi
echo "Chromium is missing; installing Debian's chromium package"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
[ -x "$CHROMIUM" ] || { echo "ERROR: could not install Chromium at $CHROMIUM" >&2; exit 1; }
