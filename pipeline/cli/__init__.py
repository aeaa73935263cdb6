"""The ``xlcat`` command line: thin subcommands over the Python API.

- :mod:`pipeline.cli.main`: the parser, ``simulate``, ``build``, ``ls``, ``query``, ``plot``;
- :mod:`pipeline.cli.sas`: ``import`` (SAS light curves into a store) and ``compare``;
- :mod:`pipeline.cli.timing`: ``psd``, ``lags`` and ``products``.
"""
