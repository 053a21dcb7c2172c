#!/usr/bin/env bash
# The Pi for real: builds the gateway binary for the Pi (static musl, see
# .cargo/config.toml), replays every dev recording with it under qemu, and
# requires the events to be byte for byte those of the native binary. Also
# builds the ADC driver crate without std. Installs what it needs first, like
# tests/setup.sh (idempotent). Called by .ci/run.
#
#   tests/cross.sh                          # aarch64 (64-bit Pi OS)
#   CROSS_TARGETS="aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf" tests/cross.sh
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(${CROSS_TARGETS:-aarch64-unknown-linux-musl})
# The gateway's cargo features: the lean build by default (no watch, plot or
# demo: what a Pi runs); GATEWAY_FEATURES="" builds everything.
read -r -a gateway_features <<<"${GATEWAY_FEATURES---no-default-features}"
data=../shared/data/dev

fail() {
    echo "tests/cross.sh: $*" >&2
    exit 1
}

shopt -s nullglob
recordings=("$data"/*.csv.gz)
shopt -u nullglob
[ -d "$data" ] || fail "$data is missing: the dev recordings (shared/data/dev beside the checkout) are what the Pi binary is checked on"
[ ${#recordings[@]} -gt 0 ] || fail "no recording (*.csv.gz) in $data"

# Debian's packages each target needs: the cross gcc (linker, and C compiler
# for ring) and qemu to run the result.
need_apt=()
command -v file >/dev/null 2>&1 || need_apt+=(file)
installed_targets=$(rustup target list --installed)
need_rustup=()
for target in "${targets[@]}" thumbv7em-none-eabihf; do
    case "$target" in
        aarch64-*) gcc=aarch64-linux-gnu-gcc pkg=gcc-aarch64-linux-gnu qemu=qemu-aarch64 ;;
        armv7-*) gcc=arm-linux-gnueabihf-gcc pkg=gcc-arm-linux-gnueabihf qemu=qemu-arm ;;
        thumbv7em-*) gcc="" pkg="" qemu="" ;;
        *) fail "no recipe for target $target" ;;
    esac
    if [ -n "$gcc" ] && ! command -v "$gcc" >/dev/null 2>&1; then need_apt+=("$pkg"); fi
    if [ -n "$qemu" ] && ! command -v "$qemu" >/dev/null 2>&1; then need_apt+=(qemu-user); fi
    grep -qx "$target" <<<"$installed_targets" || need_rustup+=("$target")
done
if [ ${#need_apt[@]} -gt 0 ]; then
    mapfile -t need_apt < <(printf '%s\n' "${need_apt[@]}" | sort -u)
    echo "tests/cross.sh: installing ${need_apt[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
if [ ${#need_rustup[@]} -gt 0 ]; then
    rustup target add "${need_rustup[@]}"
fi

# The driver crate is no_std: built for a microcontroller, it cannot use std.
cargo build -q -p mcp3x08 --target thumbv7em-none-eabihf

# The reference: the native binary as `cargo test` builds it (in .ci/run it
# has just done so: nothing to compile). Not `cargo build`: without the
# dev-dependencies some crates get other features and would be built again.
# Optimisation does not change the results (no fast-math in Rust).
cargo test -q --no-run
native=target/debug/flatback
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for target in "${targets[@]}"; do
    case "$target" in
        aarch64-*) qemu=qemu-aarch64 ;;
        armv7-*) qemu=qemu-arm ;;
    esac
    start=$SECONDS
    # Profile `pi`: release without debug info, stripped.
    cargo build -q --profile pi --target "$target" --bin flatback "${gateway_features[@]}"
    binary=target/$target/pi/flatback
    echo "tests/cross.sh: $target: built in $((SECONDS - start)) s, $(stat -c %s "$binary") bytes" >&2
    file -b "$binary" | grep -q "statically linked" || fail "$binary is not static: $(file -b "$binary")"

    start=$SECONDS
    for recording in "${recordings[@]}"; do
        name=$(basename "$recording" .csv.gz)
        "$native" replay "$recording" >"$out/$name.native.jsonl"
        "$qemu" "$binary" replay "$recording" >"$out/$name.$target.jsonl"
        [ -s "$out/$name.native.jsonl" ] || fail "the native replay of $recording gave no event"
        if ! differ=$(cmp "$out/$name.native.jsonl" "$out/$name.$target.jsonl" 2>&1); then
            # "differ: byte B, line N" (not "EOF on ...": one output is the other's start).
            line=$(sed -n 's/.* differ: .*line \([0-9]*\).*/\1/p' <<<"$differ")
            echo "tests/cross.sh: $target: replay of $recording differs from the native run ($differ)" >&2
            if [ -n "$line" ]; then
                echo "  native:  $(sed -n "${line}p" "$out/$name.native.jsonl")" >&2
                echo "  $target: $(sed -n "${line}p" "$out/$name.$target.jsonl")" >&2
            fi
            exit 1
        fi
    done
    echo "tests/cross.sh: $target: ${#recordings[@]} replays under $qemu identical to the native run ($((SECONDS - start)) s)" >&2

    # The history's SQLite, bundled and static: the roster written and read
    # back by the Pi's binary, the file then read by the native one.
    db="$out/$target-history.db"
    printf '[history]\ndatabase = "sqlite:%s"\n' "$db" >"$out/$target-history.toml"
    added=$("$qemu" "$binary" athlete add "Pi Athlete" --config "$out/$target-history.toml") ||
        fail "$target: athlete add under $qemu failed"
    id=$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' <<<"$added")
    [ -n "$id" ] || fail "$target: athlete add printed no id: $added"
    "$qemu" "$binary" athlete list --config "$out/$target-history.toml" | grep -q "\"$id\"" ||
        fail "$target: athlete list under $qemu does not list $id"
    "$native" athlete list --config "$out/$target-history.toml" | grep -q "\"Pi Athlete\"" ||
        fail "$target: the native binary does not read the roster the Pi's wrote"
    echo "tests/cross.sh: $target: the history's SQLite works under $qemu (athlete $id)" >&2
done
