"""Dockerfile frontend and build context of `dockyard build` (layer L4)."""
