"""docs/api.md quotes the example plugin: the quotes stay true to the code that runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _code(text: str) -> str:
    """The statements of a module, without its docstring and comments."""
    tree = ast.parse(text)
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        tree.body = tree.body[1:]
    return ast.unparse(tree)


def test_the_api_docs_quote_the_example_plugin():
    docs = (ROOT / "docs" / "api.md").read_text()
    blocks = {m.group(1): m.group(0) for m in re.finditer(r"```python\n# (src/\S+)[^\n]*\n.*?```", docs, re.S)}
    assert set(blocks) == {"src/bpft_count/plugin.py", "src/bpft_count/count.py"}
    for path, block in blocks.items():
        quoted = block.removeprefix("```python\n").removesuffix("```")
        actual = (ROOT / "examples" / "bpft-count" / path).read_text()
        assert _code(quoted) == _code(actual), path


def test_the_example_is_under_forty_lines():
    src = ROOT / "examples" / "bpft-count" / "src" / "bpft_count"
    assert sum(len(p.read_text().splitlines()) for p in src.glob("*.py")) < 40
