#!/usr/bin/env bash
# Shows config/homeassistant/coach-dashboard.yaml in a real Home Assistant
# (../shared/tools/ha-check) while `flatback publish` runs four mats, and
# screenshots it with headless Chromium: every card must draw, and an ARCH
# banner must show at some point. The screenshots land in $OUT (default
# target/coach-dashboard/).
# Usage: tests/ha/coach-dashboard.sh
# Setup once: ../shared/tools/ha-check/setup.sh; apt-get install chromium
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v chromium >/dev/null || { echo "needs chromium (apt-get install chromium)" >&2; exit 2; }
cargo build --release --quiet
out=${OUT:-$PWD/target/coach-dashboard}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[mqtt]\ngateway_id = "gym1"\ngateway_name = "Gym floor 1"\noutbox_dir = "%s/outbox"\n' "$work" > "$work/flatback.toml"
../shared/tools/ha-check/run.py --wait 120 --out "$out/ha-check.json" \
  --cmd "\"\$HA_CHECK_PYTHON\" $PWD/tests/ha/coach_screenshot.py $PWD/target/release/flatback $work/flatback.toml $PWD/config/homeassistant/coach-dashboard.yaml $out"
python3 -c "import json,sys; r=json.load(open('$out/ha-check.json'))['command']; print(r['output_tail']); sys.exit(r['returncode'] or 0)"
