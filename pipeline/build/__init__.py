"""Building a catalogue: plan, Dask graph, cluster, and importing existing light curves.

- :mod:`pipeline.build.plan`: validate every input and decide which groups to (re)build;
- :mod:`pipeline.build.graph`: the Dask graph of a build and running it;
- :mod:`pipeline.build.cluster`: a LocalCluster, a scheduler address, or dask-jobqueue;
- :mod:`pipeline.build.importer`: SAS light curves already on disk into a store.
- :mod:`pipeline.build.scaffold`: a first build file and ds9 regions for a folder of event
  lists (``xlcat init``), placed on the events by :mod:`pipeline.build.placement`.
"""
