#!/bin/sh
# One HTTP exchange: read the request line (and headers), answer with a small text body.
read -r method path _version
while read -r line && [ "$(printf '%s' "$line" | tr -d '\r')" != "" ]; do :; done
body="Hello from my-node-app (${method:-GET} ${path:-/})"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s\n' \
  "$(( ${#body} + 1 ))" "$body"
