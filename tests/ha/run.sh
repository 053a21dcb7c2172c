#!/usr/bin/env bash
# Checks Home Assistant discovery against a real Home Assistant core and a
# real Mosquitto (../shared/tools/ha-check): two simulated mats at 6x,
# 34 entities on 3 devices, states and events, no warning in HA's log.
# `--cmd-first` starts flatback before Home Assistant (discovery must then
# survive HA's start: retained configs and the re-send on its birth message).
# Usage: tests/ha/run.sh [--cmd-first]   (setup once: ../shared/tools/ha-check/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[mqtt]\ngateway_id = "gym1"\ngateway_name = "Gym floor 1"\noutbox_dir = "%s/outbox"\n' "$work" > "$work/flatback.toml"
../shared/tools/ha-check/run.py "$@" --wait 25 --out "${HA_CHECK_OUT:-$work/result.json}" --expect tests/ha/expect.json \
  --cmd "$PWD/target/release/flatback publish --broker mqtt://127.0.0.1:\$MQTT_PORT --config $work/flatback.toml --mat mat1 --mat mat2 --kind three_sets --seed 3 --speed 6"
