"""Running SAS (the XMM-Newton Science Analysis System) for the ``sas`` backend.

The modules are small and each one idea:

- :mod:`pipeline.extract.sas.commands`: the exact argument lists of evselect, tabgtigen and
  epiclccorr (pure functions; golden-tested);
- :mod:`pipeline.extract.sas.environment`: finding SAS (``SAS_DIR``, ``sasversion``) and the
  calibration index (``SAS_CCF`` or ``ccf.cif`` next to or above an event file);
- :mod:`pipeline.extract.sas.runner`: running one command (argument list, timeout, logs) in a
  task's own temporary folder, keeping the folder beside the store when it fails;
- :mod:`pipeline.extract.sas.lightcurve`: reading SAS light-curve files (evselect rate sets,
  epiclccorr output) onto an explicit time grid, by index;
- :mod:`pipeline.extract.sas.cache`: the content-addressed cache of successful band tasks.

The backend itself is :class:`pipeline.extract.backends.sas.SASBackend`.
"""
