#!/usr/bin/env bash
# Install Debian's Chromium for the browser check of the HTML report (tests/test_report_browser.py).
# The test drives /usr/bin/chromium with Playwright for Python (a dev extra); no test tool ever
# downloads a browser. Run as root, or with sudo on PATH. Does nothing if Chromium is there.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "ci-browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) already installed"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "ci-browser: run as root or install sudo" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y chromium
/usr/bin/chromium --version
