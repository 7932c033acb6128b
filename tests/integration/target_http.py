"""HTTP calls made from inside a Molecule target (python3 there, no curl), for the testinfra suites.

``call(host, method, url, body, token)`` returns ``(status, parsed body)``: JSON when the answer is
JSON, else the text. The bearer token travels in argv of a process on the test target only.
"""

from __future__ import annotations

import json

SCRIPT_PATH = "/root/target_http.py"
SCRIPT = """import json, sys, urllib.request, urllib.error
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 and sys.argv[3] else None
headers = {'Content-Type': 'application/json'}
if len(sys.argv) > 4:
    headers['Authorization'] = 'Bearer ' + sys.argv[4]
try:
    response = urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers, method=method), timeout=30)
except urllib.error.HTTPError as error:
    response = error
text = response.read().decode()
try:
    parsed = json.loads(text or 'null')
except ValueError:
    parsed = text
print(json.dumps([response.status, parsed]))
"""


def call(host, method, url, body=None, token=None):
    host.check_output("cat > %s <<'EOF'\n%sEOF" % (SCRIPT_PATH, SCRIPT))
    args = [method, url, json.dumps(body) if body is not None else ""] + ([token] if token else [])
    command = "python3 %s " % SCRIPT_PATH + " ".join("'%s'" % arg for arg in args)
    status, parsed = json.loads(host.check_output(command))
    return status, parsed
