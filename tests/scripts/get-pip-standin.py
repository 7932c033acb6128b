"""Stand-in for ansible-test's pip bootstrap script (test tooling only).

ansible-test bootstraps pip in each sanity venv by downloading get-pip.py from
a host this network cannot reach. This stand-in does the same job with the
interpreter's bundled ensurepip, then installs the pip version ansible-test
asked for from the package index. tests/scripts/sanity.sh puts it where
ansible-test looks for its cached copy.
"""

import subprocess
import sys

# In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own
# environment, which would hide the machine's pip configuration (CA bundle).
subprocess.check_call([sys.executable, "-m", "ensurepip"])
# get-pip.py's own flags; pip install does not know them.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}
subprocess.check_call([sys.executable, "-m", "pip", "install"] + [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY])
