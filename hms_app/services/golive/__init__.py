"""Going live: starting a real hospital empty and bringing its existing data in.

- ``kinds``: what every import shares: the CSV kinds' columns and row importers, the report of
  what happened to each line, the progress callback that can cancel.
"""
