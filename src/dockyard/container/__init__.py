"""Containers (layer L4): records and their state machine, the per-container supervisor, the
OCI spec built from an image and run options, logs, and the lifecycle operations."""
