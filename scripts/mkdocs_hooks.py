"""mkdocs hook (mkdocs.yml `hooks:`): a docs page's relative link to a file of the repository outside
docs/ (`../tests/x.py`, as GitHub renders it) becomes a link to that file at `repo_url`, and one to a
file that does not exist is a warning, so `mkdocs build --strict` fails on it as on any broken link."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(f"mkdocs.plugins.{__name__}")
LINK = re.compile(r"(\]\()(?P<target>[^)\s#]+)(?P<anchor>#[^)\s]*)?(\))")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
FENCE = re.compile(r"^\s*(```|~~~)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    docs = Path(config["docs_dir"]).resolve()
    root = Path(config["config_file_path"]).resolve().parent
    base = Path(page.file.abs_src_path).parent
    blob = str(config["repo_url"] or "").rstrip("/")

    def rewrite(match: re.Match[str]) -> str:
        target = match["target"]
        if SCHEME.match(target) or target.startswith("/"):
            return match[0]
        path = (base / target).resolve()
        if path.is_relative_to(docs):
            return match[0]  # mkdocs itself checks links between pages
        if not path.is_relative_to(root) or not path.exists():
            log.warning("%s links %s, which is not a file of this repository", page.file.src_uri, target)
            return match[0]
        kind = "tree" if path.is_dir() else "blob"
        url = f"{blob}/{kind}/main/{path.relative_to(root).as_posix()}{match['anchor'] or ''}"
        return f"{match[1]}{url}{match[4]}"

    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if FENCE.match(line):
            fenced = not fenced
        out.append(line if fenced else LINK.sub(rewrite, line))
    return "".join(out)
