#!/bin/sh
# The app's "server.js": a persistent busybox nc listener that runs respond.sh per connection.
PORT="${PORT:-3000}"
echo "my-node-app listening on port ${PORT}"
exec nc -ll -p "${PORT}" -e /app/respond.sh
