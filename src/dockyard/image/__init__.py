"""Images (layer L2): records over the content store, unpacking into snapshots, naming, GC,
import, save and load."""
