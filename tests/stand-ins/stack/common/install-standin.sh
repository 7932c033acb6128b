#!/bin/sh
# Runs inside a build container: installs the stand-in Python files that
# build-images.sh copied to /homelab-build into /usr/local/lib/homelab-standin.
# Arguments: SCRIPT or SCRIPT:COMMAND; the latter also writes COMMAND, a wrapper
# that runs SCRIPT with python3 (the scripts themselves carry no shebang).
set -eu
lib=/usr/local/lib/homelab-standin
install -d -m 0755 "$lib"
install -m 0644 /homelab-build/standin_http.py "$lib/"
for pair in "$@"; do
    script=${pair%%:*}
    install -m 0644 "/homelab-build/$script" "$lib/$script"
    if [ "$pair" != "$script" ]; then
        printf '#!/bin/sh\nexec python3 %s "$@"\n' "$lib/$script" > "${pair#*:}"
        chmod 0755 "${pair#*:}"
    fi
done
