"""Reading event files: FITS headers, event columns in memory-mapped row chunks, GTIs.

- :mod:`pipeline.read.fitsio`: opening a FITS file with one clear error, gzip-compressed
  lists decompressed as a stream into a temporary file, and file hashes;
- :mod:`pipeline.read.subspace`: the data-subspace keywords (DSTYPn, DSVALn, DSREFn and
  their per-CCD ``mDS...`` forms): the filters a list already went through;
- :mod:`pipeline.read.events`: an event list's EVENTS header (time keywords, live times,
  header macros, data subspace), its per-CCD GTIs and time filters, its ``EXPOSUnn``
  exposure steps and its columns read in row chunks, and user GTI files.
"""
