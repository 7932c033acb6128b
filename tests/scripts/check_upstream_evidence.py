"""Fail when the pins table of docs/upstream-evidence.md disagrees with the catalogues' pins.

Usage: check_upstream_evidence.py [--document PATH] [--main-defaults PATH] [--mcp-defaults PATH]

The document says, per pin, which upstream version its evidence was read at. A pin that moves
while the document stays would let a reader trust evidence about another release, so every
pin of the catalogues needs a row whose "pinned at" is the catalogue's value:

- each service image of main_stack_catalogue and mcp_stack_catalogue (registry/repository, tag),
- each base image of mcp_stack_base_images,
- each package version of mcp_stack_versions (the package is the one the catalogue's image
  builds install with that version: `name@${ARG}` for npm, `name==${ARG}` for PyPI).

Only these plain fields are read; Jinja strings elsewhere in the defaults are left alone.
Exits 1 with one line per mismatch (on stderr), 0 with a one-line summary.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import NamedTuple

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOCUMENT = os.path.join(ROOT, "docs", "upstream-evidence.md")
MAIN_DEFAULTS = os.path.join(ROOT, "roles", "main_stack", "defaults", "main.yml")
MCP_DEFAULTS = os.path.join(ROOT, "roles", "mcp_stack", "defaults", "main.yml")

# Service catalogues (name -> entry with an `image`), and the variables that hold one
# image or one package version per name.
CATALOGUES = ("main_stack_catalogue", "mcp_stack_catalogue")
IMAGE_SETS = ("mcp_stack_base_images",)
VERSION_SETS = ("mcp_stack_versions",)

PINS_HEADING = "## Pins"
PIN_COLUMN, SUBJECT_COLUMN, PINNED_COLUMN, READ_AT_COLUMN = "catalogue pin", "image or package", "pinned at", "evidence read at"
# A cell boundary is a pipe that Markdown does not escape.
CELL_BOUNDARY = re.compile(r"(?<!\\)\|")


class Pin(NamedTuple):
    """One pin: what is pinned (an image or a package, None when unknown), at which version, and in which file."""

    subject: str | None
    version: str
    source: str


class Row(NamedTuple):
    """One row of the document's pins table, with its line for the messages."""

    subject: str
    version: str
    read_at: str
    line: int


def relative(path):
    """A path as messages show it: relative to the repository when inside it."""
    return os.path.relpath(path, ROOT) if os.path.abspath(path).startswith(ROOT + os.sep) else path


def image_pin(image, source):
    """The pin of an image mapping {registry, repository, tag, digest}: a digest is part of what is pinned."""
    version = str(image.get("tag", ""))
    if image.get("digest"):
        version += "@" + str(image["digest"])
    return Pin("%s/%s" % (image.get("registry", ""), image.get("repository", "")), version, source)


def installed_packages(catalogue, version_set):
    """Version key -> the packages ("npm NAME" or "PyPI NAME") that the catalogue's builds install at it."""
    reference = re.compile(r"\{\{\s*%s\.(\w+)\s*\}\}" % re.escape(version_set))
    packages = {}
    for entry in catalogue.values():
        build = (entry or {}).get("build") or {}
        dockerfile = str(build.get("dockerfile") or "")
        for argument, value in (build.get("args") or {}).items():
            key = reference.fullmatch(str(value).strip())
            if not key:
                continue
            for name, separator in re.findall(r"([A-Za-z0-9@/._\[\]-]+)(@|==)\$\{%s\}" % re.escape(argument), dockerfile):
                packages.setdefault(key.group(1), set()).add(("npm " if separator == "@" else "PyPI ") + name)
    return packages


def package_pins(set_name, variables):
    """The pins of a version set (name -> version), each with the package the catalogues' builds install at it."""
    versions, path = variables.get(set_name, ({}, None))
    packages = {}
    for catalogue_name in CATALOGUES:
        catalogue = variables.get(catalogue_name, ({}, None))[0] or {}
        for key, names in installed_packages(catalogue, set_name).items():
            packages.setdefault(key, set()).update(names)
    pins = {}
    for key, version in (versions or {}).items():
        names = packages.get(key) or set()
        # Installed under one name (the usual case): that name is what the row must say.
        subject = next(iter(names)) if len(names) == 1 else None
        pins["%s.%s" % (set_name, key)] = Pin(subject, str(version), path)
    return pins


def catalogue_pins(defaults_by_file):
    """Every pin of the catalogues, keyed as the pins table names them ("main_stack_catalogue.n8n")."""
    variables = {}
    for path, defaults in defaults_by_file.items():
        for name, value in (defaults or {}).items():
            variables[name] = (value, path)
    pins, problems = {}, []
    for catalogue_name in CATALOGUES:
        if catalogue_name not in variables:
            problems.append("no defaults file (%s) defines %s" % (", ".join(relative(path) for path in defaults_by_file), catalogue_name))
            continue
        catalogue, path = variables[catalogue_name]
        for service, entry in (catalogue or {}).items():
            if isinstance((entry or {}).get("image"), dict):
                pins["%s.%s" % (catalogue_name, service)] = image_pin(entry["image"], path)
    for set_name in IMAGE_SETS:
        images, path = variables.get(set_name, ({}, None))
        for name, image in (images or {}).items():
            pins["%s.%s" % (set_name, name)] = image_pin(image, path)
    for set_name in VERSION_SETS:
        pins.update(package_pins(set_name, variables))
    return pins, problems


def cells(line):
    """The cells of a Markdown table row, unescaped and without code spans' backticks."""
    parts = CELL_BOUNDARY.split(line.strip())
    return [part.replace("\\|", "|").replace("`", "").strip() for part in parts[1:-1]]


def pins_table(text, document):
    """The rows of the table under the "## Pins" heading: pin key -> Row; and the problems found reading it."""
    lines = text.splitlines()
    start = next((number for number, line in enumerate(lines) if line.strip() == PINS_HEADING), None)
    if start is None:
        return {}, ["%s has no '%s' section" % (document, PINS_HEADING)]
    table = []
    for number in range(start + 1, len(lines)):
        line = lines[number].strip()
        if line.startswith("#"):
            break
        if line.startswith("|"):
            table.append((number + 1, line))
        elif table:
            break
    if len(table) < 2:
        return {}, ["%s: the '%s' section has no table" % (document, PINS_HEADING)]
    header = [cell.lower() for cell in cells(table[0][1])]
    missing = [column for column in (PIN_COLUMN, SUBJECT_COLUMN, PINNED_COLUMN, READ_AT_COLUMN) if column not in header]
    if missing:
        return {}, ["%s line %d: the pins table lacks the column(s) %s" % (document, table[0][0], ", ".join(missing))]
    rows, problems = {}, []
    for number, line in table[2:]:
        values = dict(zip(header, cells(line)))
        key = values.get(PIN_COLUMN, "")
        if not key:
            problems.append("%s line %d: a pins row without a catalogue pin" % (document, number))
            continue
        if key in rows:
            problems.append("%s line %d: %s has a row already (line %d)" % (document, number, key, rows[key].line))
            continue
        rows[key] = Row(values.get(SUBJECT_COLUMN, ""), values.get(PINNED_COLUMN, ""), values.get(READ_AT_COLUMN, ""), number)
        if not rows[key].read_at:
            problems.append("%s line %d: %s does not say what its evidence was read at" % (document, number, key))
    return rows, problems


def compare(pins, rows, document):
    """One line per disagreement between the catalogues' pins and the document's rows."""
    problems = []
    for key, pin in sorted(pins.items()):
        row = rows.get(key)
        shown = "%s %s" % (pin.subject, pin.version) if pin.subject else pin.version
        if row is None:
            problems.append("%s (%s in %s) has no row in the pins table of %s" % (key, shown, relative(pin.source), document))
            continue
        if row.version != pin.version:
            problems.append("%s: %s pins %s, but %s line %d says it is pinned at %s"
                            % (key, relative(pin.source), pin.version, document, row.line, row.version))
        if pin.subject and row.subject != pin.subject:
            problems.append("%s: %s pins %s, but %s line %d names %s"
                            % (key, relative(pin.source), pin.subject, document, row.line, row.subject))
    for key, row in sorted(rows.items()):
        if key not in pins:
            problems.append("%s line %d: %s (%s) is no pin of the catalogues any more" % (document, row.line, key, row.subject))
    return problems


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--document", default=DOCUMENT)
    parser.add_argument("--main-defaults", default=MAIN_DEFAULTS)
    parser.add_argument("--mcp-defaults", default=MCP_DEFAULTS)
    args = parser.parse_args(argv)
    document = relative(args.document)
    pins, problems = catalogue_pins({path: load_yaml(path) for path in (args.main_defaults, args.mcp_defaults)})
    with open(args.document, encoding="utf-8") as handle:
        rows, table_problems = pins_table(handle.read(), document)
    problems += table_problems
    # Without a readable table, one line saying so beats one "no row" line per pin.
    if rows or not table_problems:
        problems += compare(pins, rows, document)
    for problem in problems:
        print("upstream evidence: " + problem, file=sys.stderr)
    if problems:
        return 1
    print("upstream evidence: the %d pins of the catalogues match the pins table of %s" % (len(pins), document))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
