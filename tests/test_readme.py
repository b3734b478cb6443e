"""The README's examples cannot drift: every ```python block runs as written (its own interpreter,
the embedded data), every shell command names a script, module or make target that exists with
flags its parser accepts, and every repository path, `file.py: Name` and dotted name it cites exists.

A python block that needs a live service says so in an HTML comment just above it, e.g.
`<!-- readme-test: ray-cluster, tracking-server -->`; the test starts the service and replaces the
README's address of it (LIVE_SERVICES) with the test's own.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import io
import os
import re
import runpy
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
BLOCK_TIMEOUT_S = 300
# service named in a readme-test comment -> (the README's address of it, the fixture that starts it)
LIVE_SERVICES = {
    "ray-cluster": ("http://127.0.0.1:8265", "ray_cluster_address"),
    "tracking-server": ("http://127.0.0.1:5000", "tracking_server"),
}
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
SEPARATORS = {"&&", "||", ";", "&", "|"}
ELIDED = "..."  # "more flags here" in a command line
PLACEHOLDER = re.compile(r"<[^>]+>|[A-Z][A-Z_]*")  # a value to fill in: N, FILE, ID, <id>


@dataclass(frozen=True)
class Block:
    language: str
    line: int  # README line of the block's first line of code
    code: str
    needs: tuple[str, ...]  # services named by a readme-test comment just above the fence


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with the services their marker comment names."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"README.md line {i + 1}: a code block that is never closed")
        marker = MARKER.fullmatch(lines[i - 1].strip()) if i else None
        needs = tuple(re.split(r"[\s,]+", marker.group(1))) if marker else ()
        blocks.append(Block(fence.group(1), i + 2, "\n".join(lines[i + 1 : end]) + "\n", needs))
        i = end + 1
    return blocks


def prose(text: str) -> str:
    """The README without its fenced blocks (blanked, so that line numbers stay)."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            out.append("")
        else:
            out.append("" if inside else line)
    return "\n".join(out)


TEXT = README.read_text()
BLOCKS = readme_blocks(TEXT)


# ---------------------------------------------------------------------------- python blocks


def run_block(code: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter; a timeout counts as a failure with the output so far."""
    try:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:
        stderr = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else err.stderr or ""
        return subprocess.CompletedProcess(err.cmd, -1, "", f"{stderr}\ntimed out after {BLOCK_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def ray_cluster_address(ray_head):
    """The job API address of a private Ray head (tests/conftest.py)."""
    return ray_head.address


def with_live_services(block: Block, request) -> str:
    """The block's code with the README's service addresses replaced by the test's own services."""
    code = block.code
    for service in block.needs:
        assert service in LIVE_SERVICES, (
            f"README.md line {block.line}: unknown readme-test service {service!r}"
        )
        address, fixture = LIVE_SERVICES[service]
        assert address in code, f"README.md line {block.line}: marked {service} but never uses {address}"
        code = code.replace(address, request.getfixturevalue(fixture))
    return code


def check_block_runs(block: Block, code: str, cwd: Path) -> None:
    """Fail naming the README line when the block's code does not run."""
    env = os.environ | {
        "PYTHONPATH": str(REPO_ROOT),
        "MPLBACKEND": "Agg",
        "SWEEPS_QUEUE": str(cwd / "queue.db"),  # a queue example never touches the user's queue
    }
    result = run_block(code, cwd, env)
    if result.returncode != 0:
        pytest.fail(f"README.md line {block.line}: the python block fails\n{result.stderr[-6000:]}")


PYTHON_BLOCKS = [b for b in BLOCKS if b.language == "python"]


# Two tests, so that `make test` runs the blocks that start nothing beside the service tests
# (tests/conftest.py: only the second is in the serial group).
@pytest.mark.parametrize("block", [b for b in PYTHON_BLOCKS if not b.needs], ids=lambda b: f"line{b.line}")
def test_python_block_runs(block, tmp_path):
    check_block_runs(block, block.code, tmp_path)


@pytest.mark.parametrize("block", [b for b in PYTHON_BLOCKS if b.needs], ids=lambda b: f"line{b.line}")
def test_python_block_with_services_runs(block, request, tmp_path):
    code = with_live_services(block, request)  # first: the Ray head fixture sets RAY_AUTH_MODE
    check_block_runs(block, code, tmp_path)


# ---------------------------------------------------------------------------- shell commands


def split_commands(tokens: list[str]) -> list[list[str]]:
    """Shell words -> the commands joined by &&, ||, ;, & and |."""
    commands, current = [], []
    for token in tokens:
        if token in SEPARATORS:
            commands.append(current)
            current = []
            continue
        word = token.rstrip(";&")
        if word:
            current.append(word)
        if word != token:  # `cmd;` or `cmd &`: the separator stuck to the word
            commands.append(current)
            current = []
    commands.append(current)
    return [c for c in commands if c]


def synopsis_word(word: str) -> str:
    """A usage-synopsis word as a concrete one: `[--flag` -> `--flag`, `{a,b}` -> `a`, `a|b]` -> `a`."""
    word = word.removeprefix("[")
    word = word.removesuffix("]") if "[" not in word else word
    if word.startswith("{") and word.endswith("}"):
        word = word[1:-1].split(",")[0]
    return word.split("|")[0] if "|" in word and "://" not in word else word


def commands_in(line: str) -> list[list[str]]:
    """The commands of one shell line: comment dropped, synopsis words made concrete, split at ; && ..."""
    words = [synopsis_word(w) for w in shlex.split(line, comments=True)]
    return split_commands([w for w in words if w not in ("", ELIDED)])


def shell_commands(block: Block) -> list[tuple[int, list[str]]]:
    """Each command of a shell block with its README line (`\\` continuations joined)."""
    out, pending, start = [], "", None
    for offset, line in enumerate(block.code.splitlines()):
        start = block.line + offset if start is None else start
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out += [(start, command) for command in commands_in(pending + line)]
        pending, start = "", None
    return out


def launched(argv: list[str]) -> list[str]:
    """The command `ray job submit ... -- CMD` runs (CMD), or argv itself."""
    if argv[:3] == ["ray", "job", "submit"] and "--" in argv:
        return argv[argv.index("--") + 1 :]
    return argv


def make_targets() -> dict[str, str]:
    """Targets of the Makefile -> their recipe."""
    targets, current = {}, None
    for line in (REPO_ROOT / "Makefile").read_text().splitlines():
        rule = re.match(r"^([\w.-]+)\s*:(?!=)", line)
        if rule:
            current = rule.group(1)
            targets[current] = ""
        elif line.startswith("\t") and current:
            targets[current] += line.strip() + "\n"
        elif line.strip() and not line.startswith("#"):
            current = None
    return targets


def placeholder_tolerant(convert):
    """A flag's type conversion that lets a README placeholder (N, FILE, <id>) through as it is."""

    def convert_or_placeholder(text):
        return text if PLACEHOLDER.fullmatch(text) else convert(text)

    return convert_or_placeholder


def tolerate_placeholders(parser: argparse.ArgumentParser) -> None:
    """Make the typed flags of a parser and of its sub-commands accept placeholders."""
    for action in parser._actions:
        if callable(action.type):
            action.type = placeholder_tolerant(action.type)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                tolerate_placeholders(sub)


class Parsed(BaseException):
    """Raised instead of running a program once argparse has parsed its command line."""


def parse_only(script: str | None, module: str | None, args: list[str]) -> str:
    """Run a script or module until argparse has parsed `args`, then stop; '' or argparse's error."""
    original = argparse.ArgumentParser.parse_args

    def parse_args(self, argv=None, namespace=None):
        tolerate_placeholders(self)
        raise Parsed(original(self, argv, namespace))

    stderr, saved_argv, saved_path = io.StringIO(), sys.argv, list(sys.path)
    argparse.ArgumentParser.parse_args = parse_args
    sys.argv = [script or module, *args]
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            if script:
                runpy.run_path(str(REPO_ROOT / script), run_name="__main__")
            else:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
        return "it finished without parsing its command line with argparse"
    except Parsed:
        return ""
    except SystemExit:
        return (stderr.getvalue().strip() or "it exited while parsing its command line").splitlines()[-1]
    finally:
        argparse.ArgumentParser.parse_args = original
        sys.argv, sys.path[:] = saved_argv, saved_path


def is_project_module(module: str) -> bool:
    """Whether a dotted name starts with one of this repository's packages."""
    return (REPO_ROOT / module.split(".")[0] / "__init__.py").exists()


def module_exists(module: str) -> bool:
    """Whether `python -m module` would find the module."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def check_make(words: list[str]) -> str:
    """Every target exists; ARGS="..." parses with the job script the targets' recipes pass it to."""
    targets = make_targets()
    names = [w for w in words if "=" not in w]
    unknown = [t for t in names if t not in targets]
    if unknown:
        return f"no target(s) {unknown} in the Makefile"
    args = next((w.removeprefix("ARGS=") for w in words if w.startswith("ARGS=")), None)
    if args is None:
        return ""
    script = re.search(r"python (\S+\.py) \$\(ARGS\)", "".join(targets[t] for t in names))
    if script is None:
        return f"ARGS given, but no recipe of {names} passes $(ARGS) to a python script"
    return parse_only(script.group(1), None, shlex.split(args))


def check_command(argv: list[str], parse: bool = True) -> str:
    """What is wrong with one README command ('' when nothing): missing files, targets, bad flags
    (parse=False: only whether the script, module or target exists)."""
    argv = launched(argv)
    if argv[0].startswith("-"):
        return "a line of flags without a command: a continuation line lacking its backslash?"
    if argv[0] == "make":
        return check_make(argv[1:])
    if argv[0] != "python" or len(argv) < 2:
        return ""
    if argv[1] == "-m":
        module = argv[2]
        if not module_exists(module):
            return f"no module {module}"
        return parse_only(None, module, argv[3:]) if parse and is_project_module(module) else ""
    script = argv[1]
    if not (REPO_ROOT / script).is_file():
        return f"no script {script}"
    return parse_only(script, None, argv[2:]) if parse and script.startswith("jobs/") else ""


COMMANDS = [
    (line, argv)
    for block in BLOCKS
    if block.language in ("bash", "sh")
    for line, argv in shell_commands(block)
]


@pytest.mark.parametrize(("line", "argv"), COMMANDS, ids=[f"line{line}" for line, _ in COMMANDS])
def test_shell_command_exists_and_parses(line, argv):
    problem = check_command(argv)
    assert not problem, f"README.md line {line}: `{shlex.join(argv)}`: {problem}"


def test_commands_in_the_prose_exist_and_parse():
    """`make lint` or `python -m core.nb101 enumerate --out FILE` in a sentence is checked like a
    block's command; a bare `python -m MODULE` or `python SCRIPT` names a program that must exist."""
    problems = []
    for line, span in inline_code(TEXT):
        if not span.startswith(("python ", "make ")):
            continue
        for argv in commands_in(span):
            if "<" in " ".join(argv[:3]):  # `python jobs/<name>.py`: a pattern, not a program
                continue
            bare = argv[0] == "python" and len(argv) == (3 if argv[1] == "-m" else 2)
            problem = check_command(argv, parse=not bare)
            problems += [f"line {line}: `{span}`: {problem}"] if problem else []
    assert not problems, "README.md quotes commands that fail:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------- cited names


def inline_code(text: str) -> list[tuple[int, str]]:
    """Backticked spans of the README's prose with their line numbers."""
    body = prose(text)
    return [(body.count("\n", 0, m.start()) + 1, m.group(1)) for m in re.finditer(r"`([^`]+)`", body)]


def repository_folders() -> set[str]:
    """Top-level folders of the project itself: not hidden, not ignored by git (outputs, mlruns)."""
    ignored = {line.strip().strip("/") for line in (REPO_ROOT / ".gitignore").read_text().splitlines()}
    return {p.name for p in REPO_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")} - ignored


def cited_paths(text: str) -> list[tuple[int, str]]:
    """Words of inline code that are paths into the repository (placeholders like <name> skipped)."""
    folders = repository_folders()
    return [
        (line, word.rstrip(":,"))
        for line, span in inline_code(text)
        for word in span.split()
        if word.split("/")[0] in folders and "/" in word and not re.search(r"[<>*{}]", word)
    ]


def top_level_names(path: Path) -> set[str]:
    """Functions, classes and variables a Python file defines at module level."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def resolves(dotted: str) -> bool:
    """Whether `pkg.module.attr` names a module or an attribute of one."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_cited_repository_paths_exist():
    missing = [f"line {line}: {path}" for line, path in cited_paths(TEXT) if not (REPO_ROOT / path).exists()]
    links = [(TEXT.count("\n", 0, m.start()) + 1, m.group(1)) for m in re.finditer(r"\]\(([^)#:]+)\)", TEXT)]
    missing += [f"line {line}: link {path}" for line, path in links if not (REPO_ROOT / path).exists()]
    assert cited_paths(TEXT), "no repository path found in the README: the extraction is broken"
    assert not missing, "README.md cites paths that do not exist:\n" + "\n".join(missing)


def test_cited_definitions_exist():
    cited = [
        (line, m.group(1), m.group(2))
        for line, span in inline_code(TEXT)
        if (m := re.fullmatch(r"(\S+\.py): (\w+)", span))
    ]
    wrong = [
        f"line {line}: {path}: {name}"
        for line, path, name in cited
        if not (REPO_ROOT / path).is_file() or name not in top_level_names(REPO_ROOT / path)
    ]
    assert cited, "no `file.py: Name` found in the README: the extraction is broken"
    assert not wrong, "README.md cites names that these files do not define:\n" + "\n".join(wrong)


def test_cited_dotted_names_resolve():
    cited = [
        (line, span)
        for line, span in inline_code(TEXT)
        if re.fullmatch(r"\w+(\.\w+)+", span) and is_project_module(span)
    ]
    wrong = [f"line {line}: {name}" for line, name in cited if not resolves(name)]
    assert cited, "no dotted project name found in the README: the extraction is broken"
    assert not wrong, "README.md cites modules or attributes that do not exist:\n" + "\n".join(wrong)
