"""What may be asked of xlcat, and the errors it gives.

- :mod:`schemas.build`: the TOML build file (pydantic models) and its validation;
- :mod:`schemas.energy`, :mod:`schemas.scheme_spec`, :mod:`schemas.schemes`: energy bands,
  the definitions of energy schemes, their identity hash and presets (``presets/``);
- :mod:`schemas.store_layout`: the store's layout and format version (``STORE_FORMAT.md``);
- :mod:`schemas.errors`: :class:`~schemas.errors.XlcatError` and its subclasses.

Nothing here imports :mod:`catalog` or :mod:`pipeline`.
"""
