"""The web UI works under the service's Content-Security-Policy (script-src 'self'; style-src 'self'):
no inline script, no inline style, no inline event handler, no eval anywhere in its static files.
(The browser tests also fail on any CSP violation Chromium reports.)"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from segmenta.interfaces.web import STATIC_DIR


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.in_script = False
        self.modules: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        line = self.getpos()[0]
        if tag == "style":
            self.problems.append(f"line {line}: <style> block")
        if "style" in names:
            self.problems.append(f"line {line}: style attribute on <{tag}>")
        for k in names:
            if k.lower().startswith("on"):
                self.problems.append(f"line {line}: inline handler {k} on <{tag}>")
        if tag == "script":
            if not names.get("src"):
                self.problems.append(f"line {line}: inline <script>")
            elif names.get("type") == "module":
                self.modules.append(str(names["src"]))
            self.in_script = True
        if tag in ("a", "form") and str(names.get("href") or names.get("action") or "").lower().startswith("javascript:"):
            self.problems.append(f"line {line}: javascript: URL")

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.problems.append(f"line {self.getpos()[0]}: inline script text")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False


def test_index_html_has_no_inline_script_style_or_handlers() -> None:
    scan = _Scan()
    scan.feed((STATIC_DIR / "index.html").read_text())
    assert scan.problems == []
    assert scan.modules == ["js/main.js"]  # ES modules, no build step


def test_scripts_never_write_inline_styles_handlers_or_eval() -> None:
    files = sorted((STATIC_DIR / "js").glob("*.js"))
    assert files
    bad = re.compile(
        r"setAttribute\(\s*['\"](style|on\w+)['\"]|\.innerHTML\s*=|\.outerHTML\s*=|insertAdjacentHTML|\beval\(|new Function\(|"
        r"document\.write|el\([^)]*\{[^}]*\bstyle:"
    )
    found = [
        f"{f.name}:{n}: {line.strip()}" for f in files for n, line in enumerate(f.read_text().splitlines(), 1) if bad.search(line)
    ]
    assert found == []
    # Every module the entry imports exists (a missing one would leave the page blank).
    for f in files:
        for dep in re.findall(r"from \"\./([\w-]+\.js)\"", f.read_text()):
            assert (STATIC_DIR / "js" / dep).is_file(), f"{f.name} imports missing {dep}"


def test_the_stylesheet_is_a_file() -> None:
    assert (STATIC_DIR / "app.css").is_file()
    assert "<style" not in (STATIC_DIR / "index.html").read_text()
