"""The README's and the docs' Python examples, run as they are written, page by page, in order; a line written
`expression  # "value"` checks that value. A block marked `<!-- not run: why -->` is listed, with its reason."""

import ast
import asyncio
import pathlib
import re

import pytest

from safecode.engine import image

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = ["README.md", *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(?:<!-- not run: (?P<why>.*?) -->\n)?```python\n(?P<code>.*?)```", re.S)
CLAIM = re.compile(r"^(?P<expression>\S.*?)\s+# (?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|True|False|None|\d+)"
                   r"(?:$|[:;,] )")
PRELUDE = "from safecode import Output\ncode = 'print(1)'\nshow = lambda stream, text: None\n"


def blocks(page):
    return [(match["code"], match["why"]) for match in BLOCK.finditer((ROOT / page).read_text())]


def test_every_page_is_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert all(f"]({page})" in readme for page in PAGES[1:]), "a page of docs/ the README does not link"


def test_what_is_not_run_says_why():
    skipped = [(page, why) for page in PAGES for _, why in blocks(page) if why is not None]
    assert all(why.strip() for _, why in skipped) and len(skipped) == 6, skipped


@pytest.mark.docker
@pytest.mark.own_pools
@pytest.mark.parametrize("page", [page for page in PAGES if any(why is None for _, why in blocks(page))])
def test_the_examples_run_as_written(page, docker, tmp_path, monkeypatch):
    image.ensure_image(f"{image.REPOSITORY}:3.13-scientific")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sales.csv").write_text("month,units\n1,10\n2,14\n3,9\n")
    namespace = {}
    exec(PRELUDE, namespace)
    for code, why in blocks(page):
        if why is None:
            run(code, namespace)


def run(code, namespace):
    """Run one block, statement by statement; an expression statement with a claimed value is checked."""
    claims = {number: match for number, line in enumerate(code.splitlines(), 1) if (match := CLAIM.match(line))}
    tree = compile(code, "<docs>", "exec", flags=ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    for statement in tree.body:
        claim = claims.get(statement.lineno)
        if claim and isinstance(statement, ast.Expr) and "..." not in claim["value"]:
            value = eval(compile(ast.Expression(statement.value), "<docs>", "eval"), namespace)
            assert value == ast.literal_eval(claim["value"]), f"{claim['expression']} is {value!r}"
            continue
        done = eval(compile(ast.Module([statement], []), "<docs>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT),
                    namespace)
        if asyncio.iscoroutine(done):
            asyncio.run(done)
