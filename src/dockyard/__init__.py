"""Dockyard: a container engine in Python with Docker's model of images and containers.

The package is layered (see DESIGN.md): L0 pure data (errors, digest, reference, oci), L1
primitives (store, linux), L2 filesystems and images (layer, snapshot, image, registry), L3
isolation (runtime, network, volume), L4 use cases (container, build), L5 the Engine façade,
L6 adapters (cli, api). Importing this package imports nothing heavy.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
