"""The distribution client (layer L2): talk to OCI / Docker registries — auth, pull, push.

Modules: `transport` (keep-alive HTTP), `auth` (challenges, basic and bearer tokens),
`credentials` (~/.docker/config.json and credential helpers), `client` (RegistryClient: the
/v2/ endpoints with retries, redirects and typed errors), `platforms` (index entry choice),
`fetch` (resumable verified blob download, teed to a consumer), `pull`, `push`, `progress`.
Import the submodules directly; this package imports nothing, to keep CLI start-up cheap.
"""
