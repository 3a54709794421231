#!/usr/bin/env bash
# Installs the system packages the test suite needs on a clean Debian machine:
# PostgreSQL (store tests run against a real server), Chromium + ChromeDriver (browser test), and the
# GL/GLib libraries OpenCV needs (mediapipe imports it; video tests).
# Idempotent: does nothing when they are already there. Needs root (CI runs as root).
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
ldconfig -p 2>/dev/null | grep -q 'libGL\.so\.1' || need+=(libgl1)
ldconfig -p 2>/dev/null | grep -q 'libgthread-2\.0\.so\.0' || need+=(libglib2.0-0t64)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps: missing ${need[*]} and cannot apt-get here; those tests will skip" >&2
    exit 0
fi
echo "install_system_deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
