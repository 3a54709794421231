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
# read the library cache once: `ldconfig -p | grep -q` under pipefail fails at random (grep exits early,
# ldconfig gets SIGPIPE) and would ask for libraries that are there
libs=$(ldconfig -p 2>/dev/null || true)
grep -q 'libGL\.so\.1' <<<"$libs" || need+=(libgl1)
grep -q 'libgthread-2\.0\.so\.0' <<<"$libs" || need+=(GLIB)
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
# GLib's package is libglib2.0-0t64 from Debian trixie on, libglib2.0-0 before
glib=libglib2.0-0t64
apt-cache show "$glib" >/dev/null 2>&1 || glib=libglib2.0-0
need=("${need[@]/#GLIB/$glib}")
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
