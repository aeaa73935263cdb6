"""Selecting events: SAS selection expressions, and ds9 regions with their shapes.

- :mod:`pipeline.select.parser`: the selectlib expression grammar (parsing only);
- :mod:`pipeline.select.expression`: compiling a parsed expression into a numpy evaluator;
- :mod:`pipeline.select.shapes`: circle, annulus, ellipse and box in sky pixels, borders inclusive;
- :mod:`pipeline.select.regions`: ds9 region files, source and background region sets.
"""
