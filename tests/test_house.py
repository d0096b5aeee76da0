"""The house's shape: rooms import one way, no two files import each other, the field side
installs without the server.

The layer and dependency rules are import-linter contracts in ``pyproject.toml``; the file-level
circles are found here from grimp's import graph (every import, lazy ones inside functions
included, but not those under ``TYPE_CHECKING``), since a contract cannot name them in advance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import grimp
import pytest

from tests.conftest import REPO, VECTORS_DIR

ROOMS = ("safetynet", "receiver", "locator", "registry", "ui", "firmware_sim", "trials")


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of a directed graph, those of two or more nodes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        # Iterative depth-first search: the import graph is shallow, but recursion limits
        # should not decide a test.
        work = [(node, iter(sorted(graph.get(node, ()))))]
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[current])
                if low[current] == index[current]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == current:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[current] = min(low[current], index[child])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_strongly_connected_finds_a_planted_circle() -> None:
    # The finder itself, on graphs whose answer is known.
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"]
    ]
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert _strongly_connected({"a": {"a"}}) == []


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout, result.stdout


def test_no_two_files_import_each_other() -> None:
    graph = grimp.build_graph(*ROOMS, exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            # A package's __init__ and its modules are one file each; an import of a package
            # (``from registry import models``) lands on the package itself.
            if imported in edges and imported != module:
                edges[module].add(imported)
    circles = _strongly_connected(edges)
    assert circles == [], "import circles between files: " + "; ".join(
        " ↔ ".join(c) for c in circles
    )


@pytest.mark.slow
def test_the_core_install_runs_the_field_side_without_the_server(tmp_path: Path) -> None:
    """A fresh virtualenv with ``pip install .`` only: receive and sim run, FastAPI is absent."""
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    environ = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    environ["SAFETYNET_DATA_DIR"] = str(tmp_path / "data")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env=environ,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    safetynet = str(env_dir / "bin" / "safetynet")

    for server_module in ("fastapi", "sqlalchemy", "folium", "jinja2"):
        probe = subprocess.run(
            [str(python), "-c", f"import {server_module}"],
            capture_output=True,
            text=True,
            check=False,
            env=environ,
        )
        assert probe.returncode != 0, f"{server_module} came with the core install"

    meta = VECTORS_DIR / "sntx1-a.sigmf-meta"
    received = subprocess.run(
        [safetynet, "receive", "--source", f"sigmf:{meta}", "--receiver-id", "CORE-1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environ,
    )
    assert received.returncode == 0, received.stderr
    truth = [json.loads(line) for line in (VECTORS_DIR / "sntx1-a.truth.jsonl").open()]
    strong = {(f["id"], f["channel"]) for f in truth if f["cn0_dbhz"] >= 50.0}
    pulses = [json.loads(line) for line in received.stdout.splitlines()]
    decoded = {
        (p["bracelet_id"], p["channel"])
        for p in pulses
        if p["kind"] == "pulse" and p["bracelet_id"]
    }
    assert strong, "the conformance truth has no strong frame"
    assert strong <= decoded, f"decoded {sorted(decoded)}, strong in truth {sorted(strong)}"

    out = tmp_path / "reports.jsonl"
    simulated = subprocess.run(
        [
            safetynet,
            "sim",
            "reports",
            "--scenario",
            str(REPO / "scenarios" / "quiet-suburb.toml"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environ,
    )
    assert simulated.returncode == 0, simulated.stderr
    assert sum(1 for _ in out.open()) > 100

    located = subprocess.run(
        [safetynet, "locate", "--input", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environ,
    )
    assert located.returncode == 0, located.stderr
    assert '"fix"' in located.stdout

    # A server command on the core install says which extra it needs, instead of a traceback.
    served = subprocess.run(
        [safetynet, "serve"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environ,
    )
    assert served.returncode != 0
    assert "safetynet[server]" in served.stderr
