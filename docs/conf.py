"""Sphinx configuration for trio-kaspa-peer."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trio_kaspa_peer import __version__

project = "trio-kaspa-peer"
author = "trio-kaspa-peer developers"
copyright = "2026, trio-kaspa-peer developers"
release = __version__
version = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# The union of every payload class is shown by its name (documented in protowire.rst).
autodoc_type_aliases = {"Payload": "trio_kaspa_peer.protowire.Payload"}
nitpicky = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
