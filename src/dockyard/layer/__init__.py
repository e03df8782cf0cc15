"""Layers (L2): tar changesets ⇄ directories, with OCI whiteouts, safely and streaming.

`apply_layer` extracts a (compressed) layer tar into a directory and returns its diff_id;
`write_layer` writes a deterministic layer tar of a directory (or of an overlay upper dir);
`diff_changes` lists Docker's A/C/D changes of an overlay upper dir. Submodules are imported
lazily by callers; this package imports nothing heavy.
"""

from __future__ import annotations
