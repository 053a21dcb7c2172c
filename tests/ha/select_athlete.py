"""Chooses an athlete on a mat through Home Assistant: run inside
../shared/tools/ha-check (which gives HA_URL and HA_TOKEN) with its venv's
Python, by tests/homeassistant.rs.

Starts `flatback publish` (left running: ha-check stops the process group
after its dump), waits for the mat's athlete select, calls
select.select_option with OPTION as a user would, and waits until the
select's state (which follows the mat's `athlete` id) shows it. Prints
each step; exits 1 if a step does not happen within its deadline.

Usage: python select_athlete.py FLATBACK CONFIG.toml MAT OPTION
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

HA_URL = os.environ["HA_URL"]
TOKEN = os.environ["HA_TOKEN"]
DEADLINE_S = 40


def call(method, path, body=None):
    req = urllib.request.Request(
        HA_URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def wait_state(entity, ok, what):
    until = time.monotonic() + DEADLINE_S
    while time.monotonic() < until:
        s = call("GET", "/api/states/" + entity)
        if s is not None and ok(s):
            print(f"{what}: {s['state']} {json.dumps(s['attributes'].get('options'))}", flush=True)
            return s
        time.sleep(0.25)
    print(f"timed out: {what}; last {s}", flush=True)
    sys.exit(1)


def main():
    flatback, config, mat, option = sys.argv[1:5]
    subprocess.Popen(
        [flatback, "publish", "--config", config, "--mat", mat, "--kind", "three_sets", "--seed", "3", "--speed", "4"]
    )
    entity = f"select.flatback_{mat}_athlete"
    wait_state(entity, lambda s: s["state"] not in ("unavailable", "unknown"), "select up")
    call("POST", "/api/services/select/select_option", {"entity_id": entity, "option": option})
    wait_state(entity, lambda s: s["state"] == option, "select after select_option")


main()
