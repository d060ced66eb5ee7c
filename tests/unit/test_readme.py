"""The README is true (issue 19 §D): every repository path it names exists, and every `dynafold`
command line in its shell blocks parses with the CLI's own parser (parsed, never run).

How the README is read, so a new section or command needs no change here:

- Paths: any text naming a file or folder under a top-level folder of the repository
  (``processors/wiring/root.py``, ``processors/services/``, in a code span also ``tests/unit``) must
  exist exactly there. A code span holding one
  word with a file ending (``catalogue.py``) or a shorter path (``wiring/aws.py``) must be the end of
  some path in the repository. Run-time state (``.dynafold/...``), virtualenvs, ``~`` and ``../``
  paths, SSM names (``/dynafold/...``) and spans with a ``<placeholder>`` or ``*`` are not
  repository paths; names from outside the repository are listed in ``NOT_IN_REPOSITORY``.
- Commands: in ```` ```sh ```` (or unmarked) blocks, a line ending in ``\\`` continues on the next;
  ``#`` starts a comment (output is shown on comment lines, ``#   ...``). Every word ``dynafold`` or
  ``.../dynafold`` starts an invocation that runs to the next shell operator (``&&``, ``|``, ``;``,
  ``>``). Substitutions before parsing: ``[optional part]`` is parsed as if given, and every
  ``<placeholder>`` becomes ``1`` (a value any argument here accepts); words in capitals (``SKU``,
  ``URL``) are already plain arguments.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from processors.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

NOT_IN_REPOSITORY = {
    "shopify.app.toml": "the Shopify app's configuration, in the app's own repository",
}
FILE_ENDINGS = ("py", "json", "jsonl", "yaml", "yml", "toml", "md", "lock", "csv", "txt", "sh", "cfg", "ini")
SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&", ">", ">>", "<", "(", ")"})
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`]+)`")


def prose() -> str:
    return _FENCE.sub("", README)


def shell_blocks() -> list[str]:
    return [body for language, body in _FENCE.findall(README) if language in ("", "sh", "bash", "shell", "console")]


@cache
def repository_paths() -> frozenset[str]:
    found: set[str] = set()
    for directory, folders, files in os.walk(ROOT):
        folders[:] = [f for f in folders if not f.startswith(".") and f not in ("node_modules", "__pycache__")]
        relative = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if relative == "." else f"{relative}/"
        found.update(f"{prefix}{name}" for name in [*folders, *files])
    return frozenset(found)


@cache
def top_level_folders() -> frozenset[str]:
    return frozenset(p for p in repository_paths() if "/" not in p and (ROOT / p).is_dir())


def named_paths() -> set[str]:
    """Paths under a top-level folder anywhere in the text, and one-word code spans that look like files."""
    folders, endings = "|".join(sorted(top_level_folders())), "|".join(FILE_ENDINGS)
    # In running text a path ends in "/" or a file ending ("1,226 events/s" is a rate, not a folder).
    under_top = re.compile(rf"(?<![\w./<$~-])((?:{folders})/(?:[\w.-]+/)*(?:[\w.-]+\.(?:{endings}))?)(?![\w/])")
    found = set(under_top.findall(README))
    for span in _SPAN.findall(prose()):
        word = span.strip()
        if re.search(r"\s|[<>*$:{}]", word) or word.startswith((".", "/", "~")):
            continue
        if not re.fullmatch(r"[\w.-]+(/[\w.-]*)*", word):
            continue
        has_ending = re.search(rf"\.({'|'.join(FILE_ENDINGS)})$", word) is not None
        if has_ending or word.split("/")[0] in top_level_folders():
            found.add(word)
    return found


def exists(path: str) -> bool:
    path = path.rstrip("/")
    if path.split("/")[0] in top_level_folders():
        return path in repository_paths()  # under a top-level folder: exactly there
    return path in repository_paths() or any(p.endswith(f"/{path}") for p in repository_paths())


def test_every_repository_path_the_readme_names_exists():
    paths = named_paths()
    assert len(paths) >= 40  # the reading finds the README's paths at all
    missing = sorted(p for p in paths if not exists(p) and p not in NOT_IN_REPOSITORY)
    assert missing == []


def test_the_paths_outside_the_repository_are_still_named():
    assert set(NOT_IN_REPOSITORY) <= named_paths()  # a stale exception is removed, not kept


def command_lines() -> list[str]:
    lines: list[str] = []
    for block in shell_blocks():
        joined = re.sub(r"\\\n", " ", block)
        lines += [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    return lines


def dynafold_invocations(line: str) -> list[list[str]]:
    text = re.sub(r"<[^<>\n]+>", "1", line).replace("[", "").replace("]", "")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    invocations = []
    for at, word in enumerate(words):
        if word == "dynafold" or word.endswith("/dynafold"):
            arguments = []
            for argument in words[at + 1:]:
                if argument in SHELL_OPERATORS:
                    break
                arguments.append(argument)
            invocations.append(arguments)
    return invocations


def all_invocations() -> list[tuple[str, list[str]]]:
    return [(line, arguments) for line in command_lines() for arguments in dynafold_invocations(line)]


def refusal(arguments: list[str]) -> str | None:
    """The parser's one-line refusal of these arguments, or None when they parse."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(arguments)
    except SystemExit as exit_:
        if exit_.code:
            return errors.getvalue().strip() or f"exit {exit_.code}"
    return None


def test_the_reading_of_command_lines():
    assert dynafold_invocations(".venv/bin/dynafold monitor run [--now TIME] && .venv/bin/dynafold outbox") == [
        ["monitor", "run", "--now", "TIME"], ["outbox"]]
    assert dynafold_invocations("dynafold read sku:P-1 > out.txt   # a comment") == [["read", "sku:P-1"]]
    assert dynafold_invocations("curl http://127.0.0.1:<api port>/x") == []
    assert command_lines()  # continuation lines joined, comments and output dropped
    assert not [line for line in command_lines() if line.endswith("\\")]
    assert refusal(["query", "all"]) is None
    assert refusal(["no-such-command"]) and refusal(["rebuild", "all", "--no-such-flag"])


def test_every_dynafold_command_in_the_readme_parses():
    invocations = all_invocations()
    assert len(invocations) >= 20  # the reading finds the README's commands at all
    refused = [(line, reason) for line, arguments in invocations if (reason := refusal(arguments)) is not None]
    assert refused == []


@pytest.mark.parametrize("line", [line for line in command_lines() if line.startswith("curl ")])
def test_every_curl_example_that_sends_json_says_so(line):
    """The HTTP API answers 415 to a body without `Content-Type: application/json`."""
    if re.search(r"\s(-d|--data\S*)\s", line):
        assert re.search(r"content-type: application/json", line, re.IGNORECASE), line
