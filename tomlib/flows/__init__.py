"""Readers and writers of interface files: the named places where file I/O happens.

One module per file family, each documenting its layout and raising errors that name the file, line
and field:

- :mod:`tomlib.flows.d0010` — DTC D0010 meter readings.
- :mod:`tomlib.flows.load_shapes` — IF022/IF023 load shape records as JSON.
- :mod:`tomlib.flows.ums_inventory` — UMS inventories in a D0388-like layout.
- :mod:`tomlib.flows.gcf` — GSP group correction factors in Elexon's published layout.

Modules are imported on use (``from tomlib.flows import d0010``) so that reading one flow does not
import the dependencies of all the others.
"""
