#!/usr/bin/env bash
# Checks Home Assistant discovery against a real Home Assistant core and a
# real Mosquitto (../shared/tools/ha-check): the daemon, `flatback run`, with
# two simulated mats at 6x; 36 entities (each mat's athlete select with an
# empty roster among them) on 3 devices, states and events, no
# warning in HA's log.
# `--cmd-first` starts flatback before Home Assistant (discovery must then
# survive HA's start: retained configs and the re-send on its birth message).
# Usage: tests/ha/run.sh [--cmd-first]   (setup once: ../shared/tools/ha-check/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
# FLATBACK=path/to/flatback: that binary instead of a release build.
if [ -z "${FLATBACK:-}" ]; then
  cargo build --release --quiet
  FLATBACK=$PWD/target/release/flatback
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A free loopback port for ha-check's broker, so the configuration can name it.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/flatback.toml" <<TOML
[mqtt]
url = "mqtt://127.0.0.1:$port"
gateway_id = "gym1"
gateway_name = "Gym floor 1"
outbox_dir = "$work/outbox"

[history]
database = "sqlite:$work/history.db"

[[mats]]
id = "mat1"
source = "sim"
kind = "three_sets"
seed = 3

[[mats]]
id = "mat2"
source = "sim"
kind = "three_sets"
seed = 4
TOML
../shared/tools/ha-check/run.py "$@" --broker-port "$port" --wait 25 --out "${HA_CHECK_OUT:-$work/result.json}" \
  --expect tests/ha/expect.json \
  --cmd "$FLATBACK run --config $work/flatback.toml --speed 6"
