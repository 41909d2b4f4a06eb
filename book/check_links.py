#!/usr/bin/env python3
"""Checks that every relative link of the built book and of the repository's READMEs resolves.

For the book (the HTML mdBook wrote): each href and src that is not absolute must name a file
of the build, and its #fragment an id in that file. For the READMEs: each relative link must name
a file of the repository. Links to other sites are not fetched (CI has no network for them).

usage: book/check_links.py [BUILD_DIR]   (default target/book)
"""
import html.parser
import pathlib
import re
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
READMES = ["README.md", "ndoptim-mpi/README.md", "tests/data/generate/README.md", "data/README.md"]


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("href", "src") and value:
                self.links.append(value)


def external(link):
    return re.match(r"^[a-z][a-z0-9+.-]*:", link) or link.startswith("//")


def main():
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target" / "book")
    pages, problems, checked = {}, [], 0
    for path in build.rglob("*.html"):
        page = Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path.resolve()] = page
    if not pages:
        sys.exit(f"no HTML under {build}: build the book first (mdbook build book)")
    for path, page in pages.items():
        for link in page.links:
            if external(link) or link.startswith("#") and link == "#":
                continue
            target, _, fragment = urllib.parse.unquote(link).partition("#")
            file = (path.parent / target).resolve() if target else path
            checked += 1
            if not file.exists():
                problems.append(f"{path.relative_to(build.resolve())}: {link}: no such file")
            elif fragment and file.suffix == ".html" and fragment not in pages[file].ids:
                problems.append(f"{path.relative_to(build.resolve())}: {link}: no #{fragment} there")
    for readme in READMES:
        text = (ROOT / readme).read_text(encoding="utf-8")
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if external(link) or link.startswith("#"):
                continue
            checked += 1
            if not ((ROOT / readme).parent / link.partition("#")[0]).exists():
                problems.append(f"{readme}: {link}: no such file")
    for p in problems:
        print(p)
    print(f"{checked} relative links checked in {len(pages)} pages and the READMEs: "
          f"{len(problems)} broken")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
