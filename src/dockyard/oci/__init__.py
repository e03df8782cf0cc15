"""OCI and Docker image formats as data (layer L0): media types, descriptors, manifests, indexes,
image configs, and canonical JSON. No I/O here; everything parses from and serialises to bytes."""
