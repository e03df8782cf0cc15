#!/usr/bin/env bash
# Install everything Dockyard needs on a Debian machine (as root) and the project into .venv.
# Idempotent: packages already installed and an up-to-date venv cost nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(busybox-static iproute2 nftables docker-registry runc crun podman skopeo umoci uidmap
      python3-venv ca-certificates tini git openssh-client)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The platform's own interpreter when it is new enough: Debian's /usr/bin/python3 is a static
# build that starts ~2.5 ms faster than a shared-library build (pyenv's, say), on every command.
# An existing .venv is kept (`rm -rf .venv` rebuilds it); PYTHON=... chooses another.
if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3 ] &&
   /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  PY=/usr/bin/python3
else
  PY=${PYTHON:-python3}
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.dockyard-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi
# PYTHONDONTWRITEBYTECODE is set on these machines: compile once here so that every command
# starts from bytecode instead of recompiling the project (tens of milliseconds per start).
.venv/bin/python -m compileall -q src >/dev/null
# pip's console scripts run `site` first (~5 ms per command); rewrite them to start without it
# (see src/dockyard/fastscripts.py; pip's versions work too, only slower).
.venv/bin/python -m dockyard.fastscripts >/dev/null
