"""How xlcat makes a catalogue, one sub-package per step of the data's journey.

- :mod:`pipeline.read`: reading event files (headers, columns in memory-mapped chunks, GTIs);
- :mod:`pipeline.select`: selecting events (SAS selection expressions, ds9 regions, shapes);
- :mod:`pipeline.extract`: extracting light curves (time grid and one-pass binning, net
  rates, the backends and SAS);
- :mod:`pipeline.build`: building a store (plan, Dask graph, cluster, import of existing
  SAS light curves);
- :mod:`pipeline.cli`: the ``xlcat`` command line;
- :mod:`pipeline.simulate`: simulated EPIC-pn observations for tests and the demo.

Each step imports only the steps before it (``tests/test_layout.py`` checks this); the
rules every number follows are written out in ``docs/semantics.md``.
"""
