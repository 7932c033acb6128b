#!/usr/bin/env bash
# ansible-test sanity for the collection's modules, module_utils and tests.
#
# ansible-test creates one venv per sanity test (cached, see below) and
# installs its pinned requirements from PyPI; only its pip bootstrap download is
# unreachable here, so a stand-in (tests/scripts/get-pip-standin.py) replaces it.
# ansible-test also needs the collection at .../ansible_collections/homelab/core
# as a real directory, so the files git would ship are copied into a scratch tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

# ansible-test's shellcheck test needs the program; Debian packages it.
if ! command -v shellcheck >/dev/null && [[ $(id -u) -eq 0 ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends shellcheck >/dev/null
fi

# Each sanity test gets a venv that ansible-test bootstraps with a downloaded
# get-pip.py; point its cache at our ensurepip-based stand-in instead.
# The venvs are kept between runs and clones (like the target image) in
# HOMELAB_TEST_CACHE when it is writable, else in .cache/.
cache=${HOMELAB_TEST_CACHE:-/var/cache/homelab-test}
mkdir -p "$cache" 2>/dev/null && [[ -w "$cache" ]] || cache="$repo/.cache"
export HOME="$cache/sanity-home"
ansible_test_dir=$("$repo/.venv/bin/python" -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
pip_version=$(grep -oP "pip='\K[0-9.]+" "$ansible_test_dir/_internal/python_requirements.py")
mkdir -p "$HOME/.ansible/test/cache"
cp tests/scripts/get-pip-standin.py "$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tree="$scratch/ansible_collections/homelab/core"
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tree"
git -C "$tree" init -q && git -C "$tree" add -A

cd "$tree"
# pip's progress chatter from the per-test venv installs is dropped from the log.
"$repo/.venv/bin/ansible-test" sanity --local --python "$("$repo/.venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" \
    --color no "$@" 2>&1 \
    | grep --line-buffered -v -E '^(WARNING: Location|Looking in links|Processing |Collecting |Downloading |Installing collected|Successfully (un)?installed|  Attempting uninstall|    Found existing|    Uninstalling|      Successfully uninstalled|Requirement already|Using cached|     ━)'
