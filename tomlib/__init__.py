"""tomlib — an open, executable model of the GB MHHS Target Operating Model.

The package holds the settlement calculations of the TOM services (DWG11/01) as pure functions over
xarray objects, a simulated market whose true consumption is known, and the report pipeline that runs
the service notebooks. See ``DESIGN.md``-style overview in the README.
"""

__version__ = "0.1.0"
