"""The homelab status page (the MCP stack's dashboard) in a real headless Chromium (Debian's), driven by Playwright.

Runs inside the Molecule target. Usage: dashboard_check.py URL SCREENSHOT TIMEOUT NAME=STATUS...
Opens URL, waits up to TIMEOUT seconds until the page's rows (the main stack's services and the MCP stack's
servers, gateway and dashboard) are exactly the NAMEs with those statuses (up, down, unprobed, elsewhere) and
its GPU line, backup line and model lists are filled in, saves a full-page screenshot, and prints one JSON object:
{"rows": {name: status}, "matched": bool, "seconds": s, "console_errors": [...],
 "gpu": {state, text}, "backup": {state, text}, "models": {"loaded": [...], "installed": [...]}, "links": {name: url}}.
"""

import json
import sys
import time

from playwright.sync_api import sync_playwright

READ = """() => {
  const rows = {};
  for (const row of document.querySelectorAll('#services tr[data-service]')) rows[row.dataset.service] = row.className;
  for (const row of document.querySelectorAll('#servers tr[data-server]')) rows[row.dataset.server] = row.className;
  const links = {};
  for (const row of document.querySelectorAll('#services tr[data-service]')) {
    const link = row.querySelector('a');
    if (link) links[row.dataset.service] = link.getAttribute('href');
  }
  const fact = id => ({state: document.getElementById(id).dataset.state || '',
                       text: document.getElementById(id).querySelector('.value').textContent});
  const items = id => [...document.querySelectorAll('#' + id + ' li')].map(item => item.textContent);
  return {rows, links, gpu: fact('gpu'), backup: fact('backup'),
          models: {loaded: items('models-loaded'), installed: items('models-installed')}};
}"""


def filled(shown):
    """The page has rendered a status: every fact and list is past its placeholder."""
    texts = [shown["gpu"]["text"], shown["backup"]["text"]] + shown["models"]["loaded"] + shown["models"]["installed"]
    return shown["gpu"]["state"] != "" and shown["backup"]["state"] not in ("", "unknown") and "Loading..." not in texts


def main(url, screenshot, timeout, *expected):
    wanted = dict(item.split("=", 1) for item in expected)
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append("pageerror: %s" % error))
        page.goto(url, wait_until="networkidle")
        begin = time.monotonic()
        while True:
            shown = page.evaluate(READ)
            if (shown["rows"] == wanted and filled(shown)) or time.monotonic() - begin > float(timeout):
                break
            page.wait_for_timeout(250)
        seconds = round(time.monotonic() - begin, 1)
        page.screenshot(path=screenshot, full_page=True)
        browser.close()
    print(json.dumps(dict(shown, matched=shown["rows"] == wanted and filled(shown), seconds=seconds, console_errors=errors)))


if __name__ == "__main__":
    main(*sys.argv[1:])
