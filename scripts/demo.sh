#!/usr/bin/env bash
# Set everything up, then run the main job: make the busybox base image, build the example app
# (examples/node-app), run it twice with published ports 8080 and 8081, ask both for a page,
# show images / ps / ps -a, then stop and remove the two containers.
# State root: $DOCKYARD_ROOT, or /var/lib/dockyard.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
dy() { echo "\$ dockyard $*"; .venv/bin/dockyard "$@"; echo; }
tmp=$(mktemp -d)
cleanup() {
  .venv/bin/dockyard rm -f my-running-app my-second-app >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The base image: FROM scratch around Debian's static busybox, through `dockyard import`.
.venv/bin/python tests/images.py "$tmp/rootfs.tar"
dy import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
   --change 'CMD ["sh"]' "$tmp/rootfs.tar" busybox:latest

dy build -t my-node-app:1.0.0 examples/node-app
dy run -d -p 8080:3000 --name my-running-app my-node-app:1.0.0
dy run -d -p 8081:3000 --name my-second-app my-node-app:1.0.0
for port in 8080 8081; do
  echo "\$ curl http://127.0.0.1:$port/"
  .venv/bin/python - "$port" <<'PY'
import sys, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
for _ in range(50):
    try:
        print(opener.open(f"http://127.0.0.1:{sys.argv[1]}/", timeout=2).read().decode())
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"nothing answered on port {sys.argv[1]}")
PY
done
dy images
dy ps
dy stop -t 2 my-second-app
dy ps -a
dy history my-node-app:1.0.0
dy save -o "$tmp/app.tar" my-node-app:1.0.0
dy load -i "$tmp/app.tar"
dy system df
