"""Reading event files: FITS headers, event columns in memory-mapped row chunks, GTIs.

- :mod:`pipeline.read.fitsio`: opening a FITS file with one clear error, and file hashes;
- :mod:`pipeline.read.events`: an event list's EVENTS header (time keywords, live times,
  header macros), its per-CCD GTIs, its columns read in row chunks, and user GTI files.
"""
