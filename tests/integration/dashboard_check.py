"""The MCP dashboard in a real headless Chromium (Debian's), driven by Playwright.

Runs inside the Molecule target. Usage: dashboard_check.py URL SCREENSHOT TIMEOUT NAME=STATUS...
Opens URL, waits up to TIMEOUT seconds until the table shows exactly the NAMEs with those
statuses (up or down), saves a screenshot, and prints one JSON object:
{"rows": {name: status}, "matched": bool, "seconds": s, "console_errors": [...]}.
"""

import json
import sys
import time

from playwright.sync_api import sync_playwright


def main(url, screenshot, timeout, *expected):
    wanted = dict(item.split("=", 1) for item in expected)
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 500})
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append("pageerror: %s" % error))
        page.goto(url, wait_until="networkidle")
        begin = time.monotonic()
        rows = {}
        while True:
            rows = page.evaluate(
                "() => Object.fromEntries([...document.querySelectorAll('#servers tr[data-server]')]"
                ".map(row => [row.dataset.server, row.className]))")
            if rows == wanted or time.monotonic() - begin > float(timeout):
                break
            page.wait_for_timeout(250)
        seconds = round(time.monotonic() - begin, 1)
        page.screenshot(path=screenshot, full_page=True)
        browser.close()
    print(json.dumps({"rows": rows, "matched": rows == wanted, "seconds": seconds, "console_errors": errors}))


if __name__ == "__main__":
    main(*sys.argv[1:])
