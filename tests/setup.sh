#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine, then returns.
# Idempotent: does nothing for what is already there. Used by the README's
# test command and so by .ci/run.
set -euo pipefail

need_apt=()
# `flatback plot` renders the text of its PNGs with a system font.
[ -n "$(find /usr/share/fonts /usr/local/share/fonts -name '*.[ot]tf' 2>/dev/null | head -n 1)" ] || need_apt+=(fonts-dejavu-core)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# The MQTT tests start their own broker (and mosquitto_passwd).
[ -x /usr/sbin/mosquitto ] && command -v mosquitto_passwd >/dev/null 2>&1 || need_apt+=(mosquitto)
# tests/history_postgres.rs starts its own PostgreSQL server (initdb, postgres).
[ -n "$(find /usr/lib/postgresql -path '*/bin/initdb' 2>/dev/null | head -n 1)" ] || need_apt+=(postgresql)
# tests/broker.rs checks the embedded broker with Mosquitto's own clients too.
command -v mosquitto_sub >/dev/null 2>&1 && command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
# tests/web.rs drives the web view in Debian's headless Chromium through
# its WebDriver, and reads /metrics with Prometheus' Python parser.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
/usr/bin/python3 -c 'import prometheus_client.parser' >/dev/null 2>&1 || need_apt+=(python3-prometheus-client)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "tests/setup.sh: installing ${need_apt[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "tests/setup.sh: no Rust toolchain: install one with rustup (https://rustup.rs), then run again" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
        rustup component add "$component"
    fi
done
