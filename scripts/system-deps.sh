#!/usr/bin/env sh
# The Debian packages the tests need: dbus-daemon (the fake BlueZ bus of the bleak tests),
# mosquitto with its clients (the real broker of the MQTT tests) and chromium (the headless
# browser of the live view's test, driven by playwright; CI fails that test without it).
# `scripts/system-deps.sh demo` checks only what `make demo` needs: mosquitto, the broker the
# demo starts; missing, it is installed the same way or the demo stops with what to install.
# Installs them with apt-get when run as root (CI); otherwise says what to install.
set -eu
missing=""
if [ "${1:-}" = demo ]; then
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing=" mosquitto"
    [ -z "$missing" ] && exit 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "error: the demo needs mosquitto, the MQTT broker it starts (Debian/Raspberry Pi OS: sudo apt-get install mosquitto); then run make demo again" >&2
        exit 1
    fi
else
    command -v dbus-daemon >/dev/null 2>&1 || missing="$missing dbus-daemon"
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
    command -v mosquitto_sub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
    command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing$missing with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    # The Debian package starts a system broker on port 1883; the tests and the demo start
    # their own on a free port.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
else
    echo "warning: missing$missing (Debian: sudo apt-get install$missing); those tests will skip" >&2
fi
