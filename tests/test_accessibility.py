"""Accessibility of the website: axe-core's WCAG 2.1 A and AA rules, in headless Chromium, on every page of
every edition (the pages of _toc.yml, the search page and the index), with 0 violations allowed.

axe-core comes from the npm registry, pinned in tasks.py (``python3 tasks.py setup`` fetches it into .venv).
A control page with known faults checks that the check reports them.
"""

from __future__ import annotations

import pytest
from course_files import course_tasks
from test_site import PAGES, ROOT, base_url, browser, open_page, serve, site, unavailable  # noqa: F401  (fixtures)

WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]  # axe's tags of the WCAG 2.0/2.1 A and AA rules
EDITIONS = ["", "zh-cn/", "zh-tw/"]  # course_editions.EDITIONS' folders
EVERY_PAGE = [p + ".html" for p in PAGES] + ["search.html", "genindex.html"]


def axe_source() -> str:
    tasks = course_tasks()
    if not tasks.AXE.is_file() and not tasks.fetch_axe():
        unavailable("axe-core is not installed and npm is missing (python3 tasks.py setup fetches it)")
    return tasks.AXE.read_text(encoding="utf-8")


def violations(page, axe: str) -> list[str]:
    """axe's WCAG 2.1 A/AA violations on a loaded page: one line per rule, with the elements it found."""
    page.add_script_tag(content=axe)
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_21_AA)
    return [f"{v['id']} ({v['impact']}, {len(v['nodes'])} elements): {v['help']}; "
            + "; ".join(n["html"][:120] for n in v["nodes"][:3]) for v in result["violations"]]


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("page_path", EVERY_PAGE)
def test_page_meets_wcag_21_aa(browser, base_url, axe, edition, page_path):  # noqa: F811
    if edition and not (ROOT / "_build" / "html" / edition / page_path).is_file():
        pytest.fail(f"the {edition} edition has no {page_path}: python3 tasks.py book builds every edition")
    page, _ = open_page(browser, base_url + edition + page_path)
    found = violations(page, axe)
    page.close()
    assert not found, "\n".join(found)


FAULTY_PAGE = """<!DOCTYPE html><html lang="en"><head><title>faults</title></head><body><main><h1>Faults</h1>
<button aria-label="Search">Find <kbd>Ctrl</kbd>+<kbd>K</kbd></button>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<div role="directory"><a href="#">a link</a></div>
<ul role="tablist"><li>no tab in it</li></ul></main></body></html>"""


def test_the_check_reports_each_kind_of_fault(browser, axe, tmp_path):  # noqa: F811
    # Control: the three rules the English site broke (label-content-name-mismatch, aria-deprecated-role,
    # aria-required-children) and a missing alt text, each planted once.
    (tmp_path / "faulty.html").write_text(FAULTY_PAGE, encoding="utf-8")
    with serve(tmp_path) as url:
        page, _ = open_page(browser, url + "faulty.html")
        found = violations(page, axe)
        page.close()
    rules = {line.split(" ")[0] for line in found}
    planted = {"label-content-name-mismatch", "image-alt", "aria-deprecated-role", "aria-required-children"}
    assert planted <= rules, found
