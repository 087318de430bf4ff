"""Sphinx configuration for trio-kaspa-peer."""

from __future__ import annotations

import importlib
import sys
import typing
from pathlib import Path

from sphinx.pycode import ModuleAnalyzer

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
autodoc_type_aliases = {
    "Payload": "trio_kaspa_peer.protowire.Payload",
}
nitpicky = True
# Type variables (``T``) are not classes: nothing to link to.
nitpick_ignore_regex = [("py:class", r"[A-Z]"), ("py:obj", r"trio_kaspa_peer\..*\.[A-Z]")]
html_theme = "alabaster"
exclude_patterns = ["_build"]

# The docs build offline: the inventories of the projects we link to are made
# here from inventories.py (name -> page), not downloaded.
_inventories = write_inventories(HERE / "_build" / "inventories")
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(_inventories["python"])),
    "trio": ("https://trio.readthedocs.io/en/stable", str(_inventories["trio"])),
    "protobuf": ("https://googleapis.dev/python/protobuf/latest", str(_inventories["protobuf"])),
}


def _protowire_classes(folder: Path) -> None:
    """A reference entry for each generated protobuf class, with its fields."""
    from trio_kaspa_peer import protowire
    from trio_kaspa_peer.protowire import _messages

    lines = []
    for name in sorted(_messages.__all__):
        cls = getattr(protowire, name)
        descriptor = getattr(cls, "DESCRIPTOR", None)
        if descriptor is None:
            continue
        fields = ", ".join(
            f"``{field.name}`` ({field.number})"
            for field in sorted(descriptor.fields, key=lambda field: field.number)
        )
        lines += [
            f".. py:class:: {name}",
            "",
            f"   ``{descriptor.name}`` of ``p2p.proto``; fields: {fields or 'none'}.",
            "",
        ]
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines)
    path = folder / "protowire_classes.rst"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


_protowire_classes(HERE / "_build" / "generated")


def _public_bases(app: object, name: str, obj: object, options: object, bases: list[type]) -> None:
    """Show a class's nearest documented ancestors, not the private helpers between."""
    for index, base in enumerate(bases):
        while base.__name__.startswith("_") or base.__module__.split(".")[-1].startswith("_"):
            if base.__module__ == "builtins" or not base.__mro__[1:]:
                break
            base = base.__mro__[1]
        bases[index] = base
    bases[:] = [
        typing.get_origin(base) or base
        for base in bases
        if getattr(base, "__name__", "") != "Generic"
    ]


def _attribute_docs(
    app: object, what: str, name: str, obj: object, options: object, lines: list[str]
) -> None:
    """Attribute docstrings of classes whose ``__module__`` shows their public module.

    Sphinx reads an attribute's docstring from the source of the module named by
    ``__module__``; the library sets that to the public module, so the docstring is
    read here from the module that defines the class (``__source_module__``).
    """
    if what != "attribute" or lines:
        return
    parent_name, _, attribute = name.rpartition(".")
    module_name, _, class_name = parent_name.rpartition(".")
    try:
        owner = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        return
    source = getattr(owner, "__source_module__", None)
    if not isinstance(source, str):
        return
    analyzer = ModuleAnalyzer.for_module(source)
    analyzer.analyze()
    lines.extend(analyzer.attr_docs.get((owner.__qualname__, attribute), []))


def setup(app: object) -> None:
    app.connect("autodoc-process-bases", _public_bases)  # type: ignore[attr-defined]
    app.connect("autodoc-process-docstring", _attribute_docs)  # type: ignore[attr-defined]
