"""Named volumes (layer L3): Docker's `local` volume driver.

`service.VolumeService` creates, lists, removes and prunes volumes and prepares them for a
container (`prepare_mount`); `model` holds the pure rules (names, options, filters, inspect
shape); `copyup` copies an image's directory into a new volume without following symlinks.
"""
