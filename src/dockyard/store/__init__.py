"""Layer L1 stores: the content store (blobs by digest) and the metadata DB (names, records)."""
