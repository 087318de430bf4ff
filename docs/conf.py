"""Sphinx configuration for trio-kaspa-peer."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from inventories import write_inventories  # noqa: E402

from trio_kaspa_peer import __version__  # noqa: E402

project = "trio-kaspa-peer"
author = "trio-kaspa-peer developers"
copyright = "2026, trio-kaspa-peer developers"
release = __version__
version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinxcontrib_trio",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The union of every payload class is shown by its name (documented in protowire.rst).
autodoc_type_aliases = {"Payload": "trio_kaspa_peer.protowire.Payload"}
nitpicky = True
html_theme = "alabaster"
exclude_patterns = ["_build"]

# The docs build offline: the inventories of the projects we link to are made
# here from inventories.py (name -> page), not downloaded.
_inventories = write_inventories(HERE / "_build" / "inventories")
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(_inventories["python"])),
    "trio": ("https://trio.readthedocs.io/en/stable", str(_inventories["trio"])),
}
