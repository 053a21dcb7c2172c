"""Screenshots of config/homeassistant/coach-dashboard.yaml in a real Home
Assistant: run by tests/ha/coach-dashboard.sh inside ../shared/tools/ha-check
(which gives MQTT_PORT, HA_URL and HA_TOKEN), with the ha-check venv's Python
(aiohttp, PyYAML).

It starts `flatback publish` with four mats, waits for their entities, loads
the dashboard into a new storage-mode dashboard over the websocket API, opens
it in headless Chromium (the long-lived token put where the frontend keeps
its tokens), takes a screenshot every few seconds, and reports for each the
cards Home Assistant could not draw (hui-error-card) and the ARCH banners
shown. Exits 1 when a card failed to draw or no screenshot showed a banner.

Usage: python coach_screenshot.py FLATBACK CONFIG.toml DASHBOARD.yaml OUTDIR
"""

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time

import aiohttp
import yaml

HA_URL = os.environ["HA_URL"]
TOKEN = os.environ["HA_TOKEN"]
MQTT_PORT = os.environ["MQTT_PORT"]
MATS = ["mat1", "mat2", "mat3", "mat4"]
SHOTS = 12
EVERY_S = 4.0

# Every hui-error-card (a card the frontend could not build) and the titles
# of the ha-alerts on screen, through the shadow roots.
PROBE_JS = """
(() => {
  const errors = [], alerts = [];
  const walk = (root) => root.querySelectorAll('*').forEach((el) => {
    const tag = el.tagName.toLowerCase();
    if (tag === 'hui-error-card') errors.push((el.shadowRoot || el).textContent.trim().slice(0, 200));
    if (tag === 'ha-alert') alerts.push(el.getAttribute('title') || '');
    if (el.shadowRoot) walk(el.shadowRoot);
  });
  walk(document);
  const cards = document.querySelector('home-assistant') ? 'app' : 'no app';
  return JSON.stringify({errors, alerts, cards});
})()
"""


def log(msg):
    print(f"[coach-screenshot {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def ws_calls(session, calls):
    """Runs websocket API calls in order; returns their results."""
    results = []
    async with session.ws_connect(HA_URL.replace("http", "ws", 1) + "/api/websocket") as ws:
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": TOKEN})
        assert (await ws.receive_json())["type"] == "auth_ok"
        for n, call in enumerate(calls, start=1):
            await ws.send_json({"id": n, **call})
            while True:
                msg = await ws.receive_json()
                if msg.get("id") == n and msg.get("type") == "result":
                    break
            if not msg.get("success"):
                raise SystemExit(f"{call['type']} failed: {msg.get('error')}")
            results.append(msg.get("result"))
    return results


async def finish_onboarding(session):
    """ha-check creates the user; the frontend also wants the other steps
    done before it shows dashboards."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for step, body in [
        ("core_config", {}),
        ("analytics", {}),
        ("integration", {"client_id": HA_URL + "/", "redirect_uri": HA_URL + "/?auth_callback=1"}),
    ]:
        async with session.post(f"{HA_URL}/api/onboarding/{step}", json=body, headers=headers) as r:
            log(f"onboarding {step}: HTTP {r.status}")


async def wait_for_entities(session, timeout_s=60):
    want = {f"sensor.flatback_{m}_contact" for m in MATS}
    until = time.monotonic() + timeout_s
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while time.monotonic() < until:
        async with session.get(f"{HA_URL}/api/states", headers=headers) as r:
            have = {s["entity_id"] for s in await r.json()}
        if want <= have:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"entities missing after {timeout_s} s: {sorted(want - have)}")


class Cdp:
    """Just enough of the Chrome DevTools Protocol."""

    def __init__(self, ws):
        self.ws, self.n = ws, 0

    async def call(self, method, **params):
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == self.n:
                if "error" in msg:
                    raise SystemExit(f"{method}: {msg['error']}")
                return msg.get("result", {})


async def main():
    flatback, config, dashboard, outdir = sys.argv[1:5]
    os.makedirs(outdir, exist_ok=True)
    args = [flatback, "publish", "--broker", f"mqtt://127.0.0.1:{MQTT_PORT}", "--config", config]
    for m in MATS:
        args += ["--mat", m]
    # Fatigue: arches in the last reps of the set, a minute in at 2x.
    args += ["--kind", "fatigue", "--seed", "2", "--speed", "2"]
    publisher = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(outdir, "publish.log"), "w"))
    port = free_port()
    chromium = subprocess.Popen(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--remote-debugging-port={port}", "--window-size=1600,1300", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failed = False
    try:
        async with aiohttp.ClientSession() as session:
            await finish_onboarding(session)
            await wait_for_entities(session)
            log("entities are there; loading the dashboard")
            config_json = yaml.safe_load(open(dashboard))
            await ws_calls(session, [
                {"type": "lovelace/dashboards/create", "url_path": "leg-lifts", "title": "Leg lifts",
                 "icon": "mdi:human-handsdown", "mode": "storage", "show_in_sidebar": True, "require_admin": False},
                {"type": "lovelace/config/save", "url_path": "leg-lifts", "config": config_json},
            ])
            until = time.monotonic() + 20
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/json") as r:
                        pages = [p for p in await r.json() if p["type"] == "page"]
                    break
                except aiohttp.ClientError:
                    if time.monotonic() > until:
                        raise
                    await asyncio.sleep(0.2)
            async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = Cdp(ws)
                await cdp.call("Page.enable")
                await cdp.call("Page.navigate", url=HA_URL + "/")
                await asyncio.sleep(1)
                tokens = {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 1800, "hassUrl": HA_URL,
                          "clientId": HA_URL + "/", "expires": 4102444800000, "refresh_token": ""}
                await cdp.call("Runtime.evaluate", expression=f"localStorage.setItem('hassTokens', {json.dumps(json.dumps(tokens))})")
                await cdp.call("Page.navigate", url=HA_URL + "/leg-lifts/mats")
                banners_seen = 0
                for k in range(SHOTS):
                    await asyncio.sleep(EVERY_S)
                    probe = json.loads((await cdp.call("Runtime.evaluate", expression=PROBE_JS))["result"]["value"])
                    shot = await cdp.call("Page.captureScreenshot", format="png")
                    path = os.path.join(outdir, f"shot-{k:02d}.png")
                    with open(path, "wb") as f:
                        f.write(base64.b64decode(shot["data"]))
                    arch = [a for a in probe["alerts"] if "ARCH" in a]
                    banners_seen += bool(arch)
                    log(f"{path}: errors {probe['errors']} alerts {probe['alerts']}")
                    if probe["errors"]:
                        failed = True
                if not banners_seen:
                    log("no screenshot showed an ARCH banner")
                    failed = True
    finally:
        chromium.terminate()
        publisher.terminate()
        chromium.wait(10)
        publisher.wait(10)
    sys.exit(1 if failed else 0)


asyncio.run(main())
