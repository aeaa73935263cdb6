"""The pile-up check of a build's exposures (``xlcat pileup``), and the annulus it chooses.

- :mod:`pipeline.pileup.fractions`: pattern fractions against energy in a source circle, and
  the native 0.5-2 keV observed-to-expected ratios against the source's outer annulus;
- :mod:`pipeline.pileup.epatplot`: the same ratios from SAS ``epatplot`` (argument lists);
- :mod:`pipeline.pileup.procedure`: the check of each exposure and the reference study's
  annulus growth (3", then 0.5" steps), with SAS's rule and the study's as an option;
- :mod:`pipeline.pileup.regionfile`: the chosen annulus written into the regions file.

It reads event and region files and binds the build's settings (``pipeline.read``,
``pipeline.select``, ``pipeline.extract``); the SAS runner is the extract step's.
"""
