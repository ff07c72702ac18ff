#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's browser test (test/e2e/ui_test.go) when
# it is missing. playwright-core drives it; nothing is downloaded by Playwright itself.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-chromium.sh: chromium is not installed and this is not root; install it with: sudo apt-get install -y --no-install-recommends chromium" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium.sh: chromium is not installed and there is no apt-get; install Chromium and put it on PATH as chromium, or set CHROMIUM" >&2
	exit 1
fi
echo "install-chromium.sh: installing Debian's chromium" >&2
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2; }; then
	echo "install-chromium.sh: apt-get could not install chromium (see above); the dashboard's browser test needs it" >&2
	exit 1
fi
command -v chromium >/dev/null 2>&1 || {
	echo "install-chromium.sh: chromium was installed but is not on PATH" >&2
	exit 1
}
