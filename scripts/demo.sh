#!/usr/bin/env bash
# Set everything up, then run the main job: make the busybox base image, list and inspect it,
# and round-trip it through save/load. State root: $DOCKYARD_ROOT or /var/lib/dockyard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dy() { echo "\$ dockyard $*"; .venv/bin/dockyard "$@"; echo; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

.venv/bin/python tests/images.py "$tmp/rootfs.tar"
dy import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
   --change 'CMD ["sh"]' "$tmp/rootfs.tar" busybox:latest
dy tag busybox:latest my-base:1.0.0
dy images
dy inspect --format '{{.Id}} {{json .Config.Cmd}} {{.Os}}/{{.Architecture}}' busybox
dy history busybox
dy save -o "$tmp/images.tar" busybox:latest my-base:1.0.0
dy rmi my-base:1.0.0
dy load -i "$tmp/images.tar"
dy images
dy system df
