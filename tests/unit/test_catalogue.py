"""The Norwegian catalogue is complete: every string the code and the templates hand to gettext, extracted afresh
as `pybabel extract -F babel.cfg` would, has a Norwegian translation that is neither empty nor fuzzy and keeps
the original's placeholders (a translation naming a placeholder the code does not pass breaks the page).

English needs no catalogue: the msgids are the English texts.
"""
from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "dashboard" / "translations" / "nb" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
"""gettext's usual names, and the lazy ones the forms and tables use (`_l`)."""
SOURCES = ("dashboard", "jobs", "templates")
"""The folders babel.cfg extracts from: the others (tests, node_modules, instance) are not walked."""


def _in_sources(path: str) -> bool:
    relative = Path(path).resolve().relative_to(ROOT).parts
    return bool(relative) and relative[0] in SOURCES and not any(p.startswith((".", "__")) for p in relative)


def extracted() -> Catalog:
    """The strings of the code and templates now, with where each is used."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    catalog = Catalog(locale="nb")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True,
            directory_filter=_in_sources):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def untranslated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    return not all(strings)


def test_every_string_has_a_norwegian_translation_that_is_neither_empty_nor_fuzzy() -> None:
    with open(CATALOGUE, "rb") as po:
        norwegian = read_po(po, locale="nb")
    problems: dict[str, list[str]] = {"missing from the catalogue": [], "untranslated (an empty msgstr)": [],
                                      "fuzzy": [], "with placeholders unlike the original's": []}
    for message in extracted():
        if not message.id:
            continue
        where = f"{message.locations[0][0]}:{message.locations[0][1]}" if message.locations else "?"
        shown = f"{message.id!r}  ({where})"
        found = norwegian.get(message.id, context=message.context)
        if found is None:
            problems["missing from the catalogue"].append(shown)
        elif found.fuzzy:
            problems["fuzzy"].append(shown)
        elif untranslated(found) or (message.pluralizable and not found.pluralizable):
            problems["untranslated (an empty msgstr)"].append(shown)
        elif list(found.check(norwegian)):
            problems["with placeholders unlike the original's"].append(
                f"{shown}: {'; '.join(str(error) for error in found.check(norwegian))}")
    report = [f"{len(ids)} msgid(s) {kind}:\n  " + "\n  ".join(ids) for kind, ids in problems.items() if ids]
    assert not report, (f"The Norwegian catalogue {CATALOGUE.relative_to(ROOT)} is incomplete (update it with "
                        "pybabel extract -F babel.cfg -k _l -o messages.pot . && pybabel update -i messages.pot "
                        "-d dashboard/translations -l nb):\n" + "\n".join(report))
