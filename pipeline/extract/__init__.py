"""Extracting light curves: binning, net rates, and the backends that do it.

- :mod:`pipeline.extract.jobs`: the values that travel between tasks (an observation's job,
  its summary, the band curves);
- :mod:`pipeline.extract.binding`: an observation's settings bound to its event file (the
  camera's default screening and flare keys, sky regions converted with the file's WCS);
- :mod:`pipeline.extract.observation`: rules every backend applies the same way (screening,
  each CCD's GTI, data-subspace warnings, header macros);
- :mod:`pipeline.extract.binning`: the explicit time grid and the one-pass counts per
  (CCD, time bin, PI column);
- :mod:`pipeline.extract.exposure`: fractional exposure per bin from each CCD's exposure
  steps or live time, combined over CCDs;
- :mod:`pipeline.extract.netrate`: net rate, error and background from counts;
- :mod:`pipeline.extract.backends`: the backend base class and registry (``native``, ``sas``);
- :mod:`pipeline.extract.sas`: running SAS tasks for the ``sas`` backend.
"""
