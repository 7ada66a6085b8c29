"""The docs say what the project says: README.md stays short, every relative link and anchor in README.md and
docs/*.md leads somewhere, docs/configuration.md states every key of Pulumi.yaml as Pulumi.yaml does, and
docs/cli.md names every command and option of `sagestep.cli.build_parser()`.

Pure file reading (and the parser, imported when its test runs): no network, no AWS, no subprocess.
"""
from __future__ import annotations

import argparse
import difflib
import html
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "README.md"
CONFIGURATION = DOCS / "configuration.md"
CLI = DOCS / "cli.md"
PULUMI_YAML = ROOT / "Pulumi.yaml"

README_MAX_LINES = 200
CELL_MAX_CHARACTERS = 300
TOC_AFTER_SECTIONS = 3          # a docs page with more `##` sections than this starts with its own contents

FENCE = re.compile(r"^\s*(```+|~~~+)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def shown(path: Path) -> str:
    """A path as the failure messages name it: relative to the repository."""
    return os.path.relpath(path, ROOT)


@lru_cache(maxsize=None)
def prose(path: Path) -> tuple[tuple[int, str], ...]:
    """(line number, line) of every line outside fenced code blocks."""
    lines, fence = [], None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif marker.startswith(fence[0]) and len(marker) >= len(fence):
                fence = None
            continue
        if fence is None:
            lines.append((number, line))
    return tuple(lines)


@lru_cache(maxsize=None)
def headings(path: Path) -> tuple[tuple[int, int, str], ...]:
    """(line number, level, text) of every heading."""
    found = []
    for number, line in prose(path):
        match = HEADING.match(line)
        if match:
            found.append((number, len(match.group(1)), match.group(2)))
    return tuple(found)


def github_slug(text: str) -> str:
    """The anchor GitHub gives a heading: its text (links and code spans reduced to their text), lower case,
    punctuation dropped, each space a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]*>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(path: Path) -> tuple[str, ...]:
    """Every heading's anchor, in order; a repeated one gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    result = []
    for _, _, text in headings(path):
        slug = github_slug(text)
        count = seen.get(slug, 0)
        result.append(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return tuple(result)


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image outside code."""
    found = []
    for number, line in prose(path):
        text = CODE_SPAN.sub("", line)
        found += [(number, match.group(1)) for match in LINK.finditer(text)]
        definition = REFERENCE_DEFINITION.match(text)
        if definition:
            found.append((number, definition.group(1)))
    return found


def sections(path: Path) -> list[tuple[int, int, str, str]]:
    """(line number, level, heading text, body) per heading; the body runs to the next heading of the same
    or a higher level, so it holds the subsections."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = headings(path)
    result = []
    for index, (number, level, text) in enumerate(found):
        end = next((later for later, later_level, _ in found[index + 1:] if later_level <= level), len(lines) + 1)
        result.append((number, level, text, "\n".join(lines[number:end - 1])))
    return result


def own_body(path: Path, number: int) -> list[str]:
    """The lines under the heading at `number`, up to the next heading of any level."""
    lines = path.read_text(encoding="utf-8").splitlines()
    later = [n for n, _, _ in headings(path) if n > number]
    return lines[number:(later[0] - 1) if later else len(lines)]


def plain(text: str) -> str:
    """Markdown text as it reads: backslash escapes and HTML entities undone, whitespace collapsed."""
    text = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)
    return " ".join(html.unescape(text).split())


def code_text(heading: str) -> str:
    return plain(heading.replace("`", ""))


# ---------------------------------------------------------------- README and links

def test_readme_is_at_most_200_lines():
    count = len(README.read_text(encoding="utf-8").splitlines())
    assert count <= README_MAX_LINES, (
        f"README.md has {count} lines, more than {README_MAX_LINES}: move the detail into a page under docs/ "
        "and link it from README.md's 'Where to go next'")


def test_every_relative_link_leads_to_a_file_and_a_heading():
    problems = []
    for path in markdown_files():
        for number, target in links(path):
            if SCHEME.match(target) or target.startswith("//"):
                continue                                            # http(s):, mailto: …: not checked here
            file_part, _, anchor = target.partition("#")
            destination = (path.parent / unquote(file_part)).resolve() if file_part else path
            where = f"{shown(path)}:{number}: link {target!r}"
            if not destination.exists():
                problems.append(f"{where}: {shown(destination)} does not exist")
                continue
            if anchor and destination.is_file() and destination.suffix == ".md":
                known = anchors(destination)
                if unquote(anchor) not in known:
                    close = difflib.get_close_matches(unquote(anchor), known, n=3)
                    problems.append(f"{where}: {shown(destination)} has no heading with the anchor #{anchor}"
                                    + (f" (close: {', '.join('#' + c for c in close)})" if close else ""))
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_no_table_cell_is_longer_than_300_characters():
    problems = []
    for path in markdown_files():
        for number, line in prose(path):
            if not line.lstrip().startswith("|"):
                continue
            for cell in re.split(r"(?<!\\)\|", line.strip().strip("|")):
                if len(cell.strip()) > CELL_MAX_CHARACTERS:
                    problems.append(f"{shown(path)}:{number}: a cell of {len(cell.strip())} characters "
                                    f"({cell.strip()[:60]}…): make it a list or a section")
    assert not problems, f"table cells over {CELL_MAX_CHARACTERS} characters:\n" + "\n".join(problems)


def test_each_long_docs_page_starts_with_its_contents():
    problems = []
    for path in sorted(DOCS.glob("*.md")):
        if path == INDEX:
            continue
        second = [(number, text, anchor) for (number, level, text), anchor in zip(headings(path), anchors(path))
                  if level == 2]
        if len(second) <= TOC_AFTER_SECTIONS:
            continue
        first = second[0][0]
        linked = {target.partition("#")[2] for number, target in links(path)
                  if number < first and target.startswith("#")}
        missing = [f"{text!r} (#{anchor})" for _, text, anchor in second if anchor not in linked]
        if missing:
            problems.append(f"{shown(path)}: its contents (before line {first}) do not link {', '.join(missing)}")
    assert not problems, "pages without a complete table of contents:\n" + "\n".join(problems)


def test_the_docs_index_links_every_page_and_section():
    linked = set()
    for _, target in links(INDEX):
        file_part, _, anchor = target.partition("#")
        if file_part and not SCHEME.match(target):
            page = (DOCS / unquote(file_part)).resolve()
            linked.add((page, unquote(anchor)))
    problems = []
    for path in sorted(DOCS.glob("*.md")):
        if path == INDEX:
            continue
        if not any(page == path for page, _ in linked):
            problems.append(f"{shown(path)}: not linked")
        for (number, level, text), anchor in zip(headings(path), anchors(path)):
            if level == 2 and (path, anchor) not in linked:
                problems.append(f"{shown(path)}:{number}: section {text!r} not linked ({path.name}#{anchor})")
    assert not problems, f"{shown(INDEX)}, the docs' index, misses:\n" + "\n".join(problems)


# ---------------------------------------------------------------- configuration against Pulumi.yaml

def pulumi_config() -> dict[str, dict]:
    """Pulumi.yaml's config keys by the name the docs use: without the project's own namespace."""
    project = yaml.safe_load(PULUMI_YAML.read_text(encoding="utf-8"))
    prefix = f"{project['name']}:"
    return {key.removeprefix(prefix): spec if isinstance(spec, dict) else {"default": spec}
            for key, spec in (project.get("config") or {}).items()}


def expected_type(spec: dict) -> str:
    kind = spec.get("type")
    if not kind:
        return "none declared"
    items = (spec.get("items") or {}).get("type")
    return f"`{kind}` of `{items}`" if kind == "array" and items else f"`{kind}`"


def canonical(value) -> str:
    """One spelling per value (so `false` and `0` differ, and key order does not matter)."""
    return json.dumps(value, sort_keys=True)


def as_yaml(value) -> str:
    """A value as the docs write it: YAML, on one line."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def bullet(lines: list[str], label: str) -> str | None:
    """The text of the list item `- label: …`, with its continuation lines."""
    for index, line in enumerate(lines):
        match = re.match(rf"^[-*]\s+{re.escape(label)}:\s*(.*)$", line)
        if match:
            text = [match.group(1)]
            for more in lines[index + 1:]:
                if not more.startswith((" ", "\t")) or not more.strip():
                    break
                text.append(more.strip())
            return " ".join(text)
    return None


def documented_keys() -> dict[str, int]:
    """The keys docs/configuration.md gives a section to (a heading that is one code span), by line."""
    return {match.group(1): number for number, _, text in headings(CONFIGURATION)
            if (match := re.fullmatch(r"`([^`]+)`", text.strip()))}


def test_every_pulumi_config_key_is_in_the_configuration_page_as_pulumi_yaml_states_it():
    config, documented = pulumi_config(), documented_keys()
    where = shown(CONFIGURATION)
    problems = []
    for key, spec in config.items():
        if key not in documented:
            problems.append(f"{where}: no section ### `{key}` (Pulumi.yaml declares {key})")
            continue
        number = documented[key]
        body = own_body(CONFIGURATION, number)
        kind = bullet(body, "type")
        if kind is None or not plain(kind).startswith(plain(expected_type(spec))):
            problems.append(f"{where}:{number}: `{key}`: '- type: {plain(expected_type(spec))}' expected "
                            f"(Pulumi.yaml), found {kind!r}")
        default = bullet(body, "default")
        if "default" not in spec:
            if default is None or not default.startswith("none"):
                problems.append(f"{where}:{number}: `{key}`: '- default: none' expected (Pulumi.yaml has no "
                                f"default), found {default!r}")
        else:
            span = CODE_SPAN.search(default or "")
            try:
                value = yaml.safe_load(span.group(2)) if span else object()
            except yaml.YAMLError:
                value = object()
            if not span or canonical(value) != canonical(spec["default"]):
                problems.append(f"{where}:{number}: `{key}`: '- default: `{as_yaml(spec['default'])}`' expected "
                                f"(Pulumi.yaml's default), found {default!r}")
        description = bullet(body, "description")
        wanted = plain(str(spec.get("description", "")))
        if description is None or plain(description) != wanted:
            problems.append(f"{where}:{number}: `{key}`: '- description: {wanted}' expected (Pulumi.yaml's "
                            f"words), found {description!r}")
    assert not problems, "docs/configuration.md disagrees with Pulumi.yaml:\n" + "\n".join(problems)


def test_the_configuration_page_documents_no_key_pulumi_yaml_lacks():
    config = pulumi_config()
    where = shown(CONFIGURATION)
    problems = [f"{where}:{number}: section `{key}`, which Pulumi.yaml does not declare"
                for key, number in documented_keys().items() if key not in config]
    table = set()
    for number, line in prose(CONFIGURATION):
        if line.startswith("|") and (match := re.match(r"^\|\s*\[?`([^`]+)`", line)):
            table.add(match.group(1))
            if match.group(1) not in config:
                problems.append(f"{where}:{number}: table row `{match.group(1)}`, which Pulumi.yaml does not declare")
    problems += [f"{where}: the table of all keys lacks `{key}`" for key in config if key not in table]
    assert not problems, "docs/configuration.md names keys Pulumi.yaml does not:\n" + "\n".join(problems)


# ---------------------------------------------------------------- the CLI against its parser

def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("sagestep",)):
    """(command path, parser) of the program and of every subcommand, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:                 # an alias names the same parser
                    seen.add(id(sub))
                    yield from commands(sub, (*path, name))


def options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions if action.help != argparse.SUPPRESS
            for option in action.option_strings if option not in ("-h", "--help")]


def test_every_command_and_option_of_the_parser_is_in_the_cli_page():
    from sagestep.cli import build_parser

    by_heading = {}
    for number, _, text, body in sections(CLI):
        by_heading.setdefault(code_text(text), (number, body))
    where = shown(CLI)
    problems = []
    for path, parser in commands(build_parser()):
        name = " ".join(path)
        if name not in by_heading:
            problems.append(f"{where}: no heading `{name}` (a command of sagestep.cli.build_parser())")
            continue
        number, body = by_heading[name]
        missing = [option for option in options(parser)
                   if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", body)]
        if missing:
            problems.append(f"{where}:{number}: the section `{name}` does not mention {', '.join(missing)}")
    assert not problems, "docs/cli.md lags behind the parser:\n" + "\n".join(problems)


@pytest.mark.parametrize("text, slug", [
    ("`sagestep local serve`", "sagestep-local-serve"),
    ("With `kmsKeyArn`: what the key policy must allow", "with-kmskeyarn-what-the-key-policy-must-allow"),
    ("Checking requests against AWS's rules", "checking-requests-against-awss-rules"),
    ("On paper, on AWS", "on-paper-on-aws"),
    ("Set-up and start-up", "set-up-and-start-up"),
])
def test_anchors_are_github_slugs(text, slug):
    assert github_slug(text) == slug
