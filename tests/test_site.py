"""The built website in a real browser (headless Chromium), served from 127.0.0.1 with no network.

Every page of the table of contents must load with no JavaScript error, no request that leaves the
machine (the site has to work offline), no broken internal link, no image that failed to load, no
math left untypeset, and no error or warning (stderr) output from a notebook cell. A full-page
screenshot of each page is written to _build/screenshots/ for a person to look at. The tests read the
site that ``python3 tasks.py book`` built (``python3 tasks.py test`` builds it before the tests): one
build, which every site test reuses.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urlparse

import pytest
import yaml
from course_files import course_tasks, site_extension

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


def toc_files() -> list[str]:
    """The pages of _toc.yml in reading order (root first), as paths without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    walk([toc])
    return files


def is_notebook(page: str) -> bool:
    """A chapter written as a MyST Markdown notebook (it has a kernelspec in its front matter)."""
    source = ROOT / f"{page}.md"
    return source.exists() and "kernelspec:" in source.read_text(encoding="utf-8").split("\n---", 1)[0]


PAGES = toc_files()
NOTEBOOKS = [p for p in PAGES if is_notebook(p)]


def course_fonts():
    return site_extension("course_fonts")


def course_editions():
    return site_extension("course_editions")


def unavailable(reason: str):
    """Without a browser the test cannot run: fail on CI (the set-up installs one), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


# ---- fixtures: the built site, a local web server, a browser ------------------------------------
@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").exists():
        unavailable(f"the website is not built in {SITE}: python3 tasks.py book builds it (python3 tasks.py test "
                    "builds it before the tests).")
    return SITE


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # keep pytest's output readable
        pass


@contextlib.contextmanager
def serve(directory: Path):
    """An HTTP server for ``directory`` on 127.0.0.1 and a free port, in a thread; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def base_url(site: Path):
    with serve(site) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        unavailable("Chromium is not installed (Debian: apt-get install chromium); python3 tasks.py test installs it.")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the Python package playwright is not installed (it is in the extra dev of pyproject.toml).")
    # The machine's own fonts only, as a reader's: the site must bring its Chinese font itself.
    work = tmp_path_factory.mktemp("chromium")
    fonts_conf = work / "fonts.conf"
    fonts_conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <cachedir>{work / 'fontcache'}</cachedir>\n</fontconfig>\n"
    )
    with sync_playwright() as p:
        # launch_persistent_context: a fresh --user-data-dir of our own for every run.
        context = p.chromium.launch_persistent_context(
            str(work / "profile"), executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            env={**os.environ, "FONTCONFIG_FILE": str(fonts_conf)}, viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, ""


@functools.cache
def ids_of(url: str) -> frozenset[str]:
    status, html = fetch(url)
    return frozenset(re.findall(r'\b(?:id|name)="([^"]+)"', html)) if status == 200 else frozenset()


# ---- what a page must satisfy -------------------------------------------------------------------
MATH_STATE = """() => {
  const math = [...document.querySelectorAll('.math')];
  const bad = math.filter(m => {
    const c = m.querySelector('mjx-container');
    if (!c) return true;
    const r = c.getBoundingClientRect();
    return r.width < 1 || r.height < 1;
  }).map(m => m.textContent.slice(0, 60));
  return {count: math.length, bad, errors: document.querySelectorAll('mjx-merror').length};
}"""
IMAGES_STATE = """() => [...document.images]
  .map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}))"""
ERROR_OUTPUTS = """() => [...document.querySelectorAll('.output.traceback, .output.error, .output.stderr')]
  .map(e => e.textContent.slice(0, 200))
  .concat(document.body.innerText.includes('Traceback (most recent call last)') ? ['a Python traceback'] : [])"""


SETTLED_PAGE = """async () => {
  if (window.courseDemos) await window.courseDemos.ready;
  await document.fonts.ready;
  await Promise.all([...document.images].filter(i => !i.complete && i.loading !== 'lazy').map(i =>
    new Promise(done => {
      i.addEventListener('load', done, {once: true});
      i.addEventListener('error', done, {once: true});
    })));
}"""


def open_page(browser, url: str, math_timeout_ms: int = 20000) -> tuple[object, list[str]]:
    """Load ``url``; return the page and every problem seen while loading it (errors, outside requests)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    problems: list[str] = []
    page = browser.new_page()
    host = urlparse(url).netloc

    def guard(route) -> None:
        if urlparse(route.request.url).netloc == host or route.request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"request to another host (fails offline): {route.request.url}")
            route.abort()

    page.route("**/*", guard)
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"JavaScript error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}: {r.failure}")
            if urlparse(r.url).netloc == host else None)
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, f"{url}: HTTP {response and response.status}"
    if page.query_selector(".math"):
        try:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=math_timeout_ms)
            page.evaluate("() => MathJax.startup.promise")  # resolves when the page is typeset
        except PlaywrightTimeout:
            problems.append("MathJax did not load")
    # Settled: what the page fetches after "load" (web fonts, MathJax's fonts, the demos' model) has arrived.
    # Named events, not Playwright's "networkidle" (no request for 500 ms), which a loaded CI machine
    # sometimes did not reach within two minutes on a page that settles in two seconds here.
    page.evaluate(SETTLED_PAGE)
    return page, problems


# Each run of CJK characters in the page's text gets a span of its own, so that the fonts that draw it can be
# asked for that run alone (Latin text beside it is drawn by the theme's fonts, as it should be).
SETTLED_FONTS = """async () => {
  await document.fonts.ready;
  await Promise.all([...document.fonts].filter(f => f.status === 'loading').map(f => f.loaded));
  document.body.getBoundingClientRect();
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
  await document.fonts.ready;
}"""

MARK_CJK = """(pattern) => {
  const cjk = new RegExp(pattern + '+', 'g');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) {
    const node = walker.currentNode, parent = node.parentElement;
    if (node.data.match(cjk) && parent && !parent.closest('script, style, mjx-container')) nodes.push(node);
  }
  let count = 0;
  for (const node of nodes) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of node.data.matchAll(cjk)) {
      if (match.index > last) fragment.appendChild(document.createTextNode(node.data.slice(last, match.index)));
      const span = document.createElement('span');
      span.dataset.cjkProbe = match[0];
      span.textContent = match[0];
      fragment.appendChild(span);
      last = match.index + match[0].length;
      count++;
    }
    if (last < node.data.length) fragment.appendChild(document.createTextNode(node.data.slice(last)));
    node.replaceWith(fragment);
  }
  return count;
}"""


def cjk_font_problems(page, limit: int = 5) -> list[str]:
    """Chinese text that is not drawn by the site's own web font, as Chromium itself reports the fonts it
    used for each run of CJK characters: a system font, or a missing glyph (the empty box) on a machine
    with no Chinese font."""
    page.evaluate(MARK_CJK, course_fonts().CJK.pattern)
    # The web font loads once some text needs it (font-display: swap draws the fallback until then); wait for
    # every pending load, then for two frames, so the layout queried below is the one drawn after the swap.
    page.evaluate(SETTLED_FONTS)
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    problems = []
    for node in cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "[data-cjk-probe]"})["nodeIds"]:
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        if not fonts:
            continue  # not rendered (display: none): nothing drawn, nothing wrong
        wrong = [f"{f['familyName']} ({f['glyphCount']} glyphs)" for f in fonts if not f.get("isCustomFont")]
        if wrong:
            text = cdp.send("DOM.getAttributes", {"nodeId": node})["attributes"]
            problems.append(f"Chinese text {text[text.index('data-cjk-probe') + 1][:20]!r} drawn without the "
                            f"course web font, by {', '.join(wrong)}")
    cdp.detach()
    return problems[:limit] + ([f"... and {len(problems) - limit} more"] if len(problems) > limit else [])


def page_problems(page, base_url: str, *, has_math: bool, is_chapter: bool) -> list[str]:
    """Everything wrong with a loaded page: math, images, error outputs, internal links."""
    problems = []
    if not page.title().strip() or page.query_selector("h1") is None:
        problems.append("the page has no title or no heading")
    math = page.evaluate(MATH_STATE)
    if math["bad"] or math["errors"]:
        problems.append(f"math not rendered by MathJax: {math}")
    if has_math and not math["count"]:
        problems.append("the page's source has math but the page shows none")
    images = page.evaluate(IMAGES_STATE)
    problems += [f"image did not load: {i['src']}" for i in images if not i["ok"]]
    if is_chapter and not [i for i in images if "/_images/" in i["src"]]:
        problems.append("a chapter should show at least one plot")
    problems += [f"a notebook cell printed an error or a warning: {e}" for e in page.evaluate(ERROR_OUTPUTS)]
    for link in sorted(set(page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"))):
        target, fragment = urldefrag(link)
        if not target.startswith(base_url):
            continue  # external (GitHub, Binder, Colab): not reachable offline, not ours to check
        status, _ = fetch(target)
        if status != 200:
            problems.append(f"broken internal link {link} (HTTP {status})")
        elif fragment and target.endswith(".html") and fragment not in ids_of(target):
            problems.append(f"broken internal link {link} (no element with id {fragment!r})")
    return problems


@pytest.mark.parametrize("page_path", PAGES)
def test_page_renders_completely_offline(browser, base_url, page_path):
    page, problems = open_page(browser, base_url + page_path + ".html")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{Path(page_path).name}.png"), full_page=True)
    has_math = "$" in (ROOT / f"{page_path}.md").read_text(encoding="utf-8")
    problems += page_problems(page, base_url, has_math=has_math, is_chapter=page_path in NOTEBOOKS)
    problems += cjk_font_problems(page)
    page.close()
    assert not problems, "\n".join(problems)


BROKEN_PAGE = """<!DOCTYPE html><html><head><title>broken</title>
<script src="https://cdn.example.org/lib.js"></script></head><body><h1>A page with every fault</h1>
<span class="math notranslate nohighlight">\\(x^2\\)</span>
<img src="missing.png" alt="a plot that is not there">
<a href="nowhere.html">a broken link</a> <a href="#no-such-anchor">a broken anchor</a>
<div class="output traceback"><pre>ZeroDivisionError: division by zero</pre></div>
<script>undefinedFunction();</script></body></html>"""


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    # Control: every check above must fire on a page that has each fault, or it would prove nothing.
    (tmp_path / "broken.html").write_text(BROKEN_PAGE, encoding="utf-8")
    with serve(tmp_path) as url:
        page, problems = open_page(browser, url + "broken.html", math_timeout_ms=1000)
        problems += page_problems(page, url, has_math=True, is_chapter=True)
        page.close()
    report = "\n".join(problems)
    for fault in ["request to another host", "JavaScript error", "MathJax did not load", "math not rendered",
                  "image did not load",
                  "at least one plot", "printed an error", "nowhere.html (HTTP 404)", "no-such-anchor"]:
        assert fault in report, f"{fault!r} was not reported:\n{report}"


CJK_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>fonts</title>
<style>html {{ --pst-font-family-base-system: system-ui, sans-serif; }}</style>
<link rel="stylesheet" href="_static/course-cjk.css"></head>
<body style="font-family: var(--pst-font-family-base)"><h1>Fonts</h1><p>Fine-tuning 微调 works.</p>
<p>{rare}</p></body></html>"""


def test_the_font_check_catches_chinese_the_site_font_lacks(browser, site, tmp_path):
    # Control: a character that no page of the site uses is not in the subset font, so the check must
    # report it, and only it; a page without the stylesheet fails on every run of Chinese.
    characters_used = course_fonts().characters_used
    rare = next(c for c in "龘靐齉爩麤" if c not in characters_used(site))
    shutil.copytree(site / "_static", tmp_path / "_static")
    (tmp_path / "page.html").write_text(CJK_PAGE.format(rare=rare), encoding="utf-8")
    (tmp_path / "bare.html").write_text(CJK_PAGE.format(rare="预训练").replace("_static/course-cjk.css", ""),
                                        encoding="utf-8")
    with serve(tmp_path) as url:
        page, _ = open_page(browser, url + "page.html")
        planted = cjk_font_problems(page)
        page.close()
        page, _ = open_page(browser, url + "bare.html")
        bare = cjk_font_problems(page)
        page.close()
    assert len(planted) == 1 and repr(rare) in planted[0], planted
    assert len(bare) == 2 and "'微调'" in bare[0] and "'预训练'" in bare[1], bare


@pytest.mark.parametrize("page_path", PAGES)
def test_the_font_preload_fetches_the_url_the_stylesheet_uses(site, page_path):
    """A preload is only used if its URL is exactly the one @font-face asks for: with Sphinx's ?v= query
    added to one of them, the browser fetches the font twice and lays out the page before it arrives."""
    page = SITE / f"{page_path}.html"
    text = page.read_text(encoding="utf-8")
    preloads = re.findall(r'<link[^>]*rel="preload"[^>]*as="font"[^>]*>', text)
    assert len(preloads) == 1, f"{page_path}: {preloads}"
    href = re.search(r'href="([^"]+)"', preloads[0])[1]
    stylesheet = re.search(r'href="([^"]*course-cjk\.css)(\?[^"]*)?"', text)[1]
    css = (page.parent / stylesheet).resolve()
    font_url = re.search(r'url\("([^"]+)"\)', css.read_text(encoding="utf-8"))[1]
    assert (page.parent / href).resolve() == (css.parent / font_url).resolve() and "?" not in href, (href, font_url)


def test_the_web_font_is_small_and_covers_the_site(site):
    from fontTools.ttLib import TTFont

    fonts = course_fonts()
    CSS_FILE, FONT_FILE, characters_used = fonts.CSS_FILE, fonts.FONT_FILE, fonts.characters_used
    folders = frozenset(e.folder for e in course_editions().EDITIONS if e.folder)
    for root in [site, *(site / f for f in sorted(folders) if (site / f).is_dir())]:  # each edition has its own
        font = TTFont(str(root / "_static" / FONT_FILE))
        missing = sorted(c for c in characters_used(root, folders) if ord(c) not in font.getBestCmap())
        assert not missing, f"characters of {root.name} missing from its font: {''.join(missing)}"
        assert (root / "_static" / FONT_FILE).stat().st_size < 1_000_000
        assert FONT_FILE in (root / "_static" / CSS_FILE).read_text()


@pytest.mark.parametrize("page_path", NOTEBOOKS)
def test_chapter_offers_its_notebook_and_launch_buttons(browser, base_url, page_path):
    page, _ = open_page(browser, base_url + page_path + ".html")
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    install_shown = page.get_by_text("install bertlab and its Chinese font").first.is_visible()
    page.close()
    assert not install_shown, "the Colab install cell should be collapsed on the page: content first"
    notebook = [h for h in hrefs if h.startswith(base_url) and h.endswith(f"/_sources/{page_path}.ipynb")]
    assert notebook, "no download link for the chapter's .ipynb"
    status, text = fetch(notebook[0])
    assert status == 200
    cells = json.loads(text)["cells"]
    assert any(c["cell_type"] == "code" and c.get("outputs") for c in cells), "the notebook has no outputs"
    install = [c for c in cells[:4] if "colab-install" in c.get("metadata", {}).get("tags", [])]
    assert install, "no install cell for Colab/Binder (a code cell tagged colab-install) at the top"
    source = "".join(install[0]["source"])
    assert "import google.colab" in source and "%pip install" in source, source
    repo = "course-ssl-bert/ssl-bert"
    assert f"https://colab.research.google.com/github/{repo}/blob/notebooks/{page_path}.ipynb" in hrefs
    assert f"https://mybinder.org/v2/gh/{repo}/notebooks?urlpath=lab/tree/{page_path}.ipynb" in hrefs


GLOSSARY_PAGE = "book/glossary"


def test_the_glossary_is_in_alphabetical_order(site):
    import html as html_lib

    page = (site / f"{GLOSSARY_PAGE}.html").read_text(encoding="utf-8")
    terms = [html_lib.unescape(re.sub(r"<[^>]+>", "", re.sub(r'<a class="headerlink".*?</a>', "", t))).strip()
             for t in re.findall(r'<dt id="term-[^"]*">(.*?)</dt>', page, flags=re.S)]
    assert len(terms) > 50 and terms == sorted(terms, key=str.lower), terms
    # terms the lecture uses that a student looks up (the glossary issue named these)
    required = {"one-hot vector", "SEP token", "MASK token", "CLS token", "semi-supervised learning",
                "perplexity", "domain-adaptive pretraining", "polarity"}
    assert not required - set(terms), f"missing from the glossary: {sorted(required - set(terms))}"
CHAPTER_GLOSSARY = """() => {
  const rows = [];
  for (const table of document.querySelectorAll('table')) {
    const head = [...table.querySelectorAll('thead th')].map(th => th.innerText.trim());
    if (head[0] !== 'English' || head[1] !== '中文') continue;
    for (const tr of table.querySelectorAll('tbody tr')) {
      const cells = tr.querySelectorAll('td');
      const a = cells[0].querySelector('a');
      rows.push({term: cells[0].innerText.trim(), href: a ? a.href : null, zh: cells[1].innerText.trim()});
    }
  }
  return rows;
}"""
GLOSSARY_ENTRIES = """() => Object.fromEntries([...document.querySelectorAll('dl.glossary > dt')].map(dt => {
  const dd = dt.nextElementSibling;
  return [dt.id, {term: dt.innerText.trim(), zh: dd.querySelector('strong').innerText.trim()}];
}))"""


@pytest.mark.parametrize("page_path", NOTEBOOKS)
def test_chapter_glossary_agrees_with_the_glossary_page(browser, base_url, page_path):
    page, _ = open_page(browser, base_url + GLOSSARY_PAGE + ".html")
    entries = page.evaluate(GLOSSARY_ENTRIES)
    page.close()
    page, _ = open_page(browser, base_url + page_path + ".html")
    rows = page.evaluate(CHAPTER_GLOSSARY)
    page.close()
    assert len(rows) >= 5, "a chapter ends with a glossary table (English | 中文 | ...) of its key terms"
    for row in rows:
        assert row["href"] and "#" in row["href"], f"{row['term']} does not link to the glossary page"
        entry = entries.get(urldefrag(row["href"])[1])
        assert entry is not None, f"{row['term']}: no such glossary entry"
        assert row["zh"] == entry["zh"], f"{row['term']}: {row['zh']} here but {entry['zh']} in the glossary"


FAILING_CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter whose code fails

```{code-cell} ipython3
print("before the error")
```

```{code-cell} ipython3
1 / 0
```
"""


@pytest.mark.parametrize("page_path", ["book/self_supervised_learning", "book/glue"])
def test_a_slow_mathjax_breaks_no_quiz(browser, base_url, page_path):
    """A quiz (jupyterquiz) reads MathJax.version from a timer set as the page loads. With MathJax deferred, a
    busy machine could run that timer first: "Cannot read properties of undefined (reading '0')". MathJax is
    delayed by a second here; the page must still load without a JavaScript error."""
    page, errors = browser.new_page(), []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def late(route) -> None:
        time.sleep(1.0)
        route.continue_()

    page.route("**/mathjax/*.js*", late)
    page.goto(base_url + page_path + ".html", wait_until="load")
    page.wait_for_timeout(1500)  # past the quiz's timers
    assert page.locator(".Quiz").count() >= 1, "no quiz on the page"
    page.close()
    assert not errors, errors


@pytest.mark.parametrize("page_path", NOTEBOOKS)
def test_chapter_practice_opens_its_solutions_and_judges_its_quiz(browser, base_url, page_path):
    """Each chapter ends with 3-5 exercises whose solutions open on a click, and a quiz of 4-6 questions
    that judges an answer in the page (sphinx-exercise, jupyterquiz)."""
    page, problems = open_page(browser, base_url + page_path + ".html")
    exercises, solutions = page.locator(".exercise"), page.locator(".solution")
    assert 3 <= exercises.count() <= 5 and solutions.count() == exercises.count(), page_path
    assert 4 <= page.locator(".MultipleChoiceQn").count() <= 6, page_path
    hidden = solutions.first.locator(".cell, p:not(.admonition-title)").first
    assert not hidden.is_visible(), "a solution is shown before the reader asks for it"
    solutions.first.locator(".toggle-button").click()
    hidden.wait_for(state="visible", timeout=3000)
    quiz = page.locator(".Quiz").first
    feedback = quiz.locator(".Feedback").first
    wrong, right = quiz.locator(".MCButton[data-correct='false']").first, quiz.locator(".MCButton[data-correct='true']")
    wrong.click()
    assert "incorrectButton" in wrong.get_attribute("class") and feedback.inner_text().strip()
    right.first.click()
    assert "correctButton" in right.first.get_attribute("class")
    assert feedback.inner_text().strip() == right.first.get_attribute("data-feedback")
    page.close()
    assert not problems, "\n".join(problems)


def make_site(root: Path, chapter: str) -> None:
    """A site in ``root`` with the course's own configuration and extension and one chapter."""
    for name in ("_config.yml", "book/references.bib"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "book" / "_ext", root / "book" / "_ext",  # every extension _config.yml names
                    ignore=shutil.ignore_patterns("__pycache__"))
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/index\nchapters:\n  - file: book/chapter\n")
    (root / "book" / "index.md").write_text("# Index\n\nA site with one chapter.\n")
    (root / "book" / "chapter.md").write_text(chapter)


def build(root: Path) -> tuple[int, str]:
    """Build the site in ``root`` with the command of ``python3 tasks.py book``; return its exit code and log."""
    from bertlab.hub import OFFLINE_ENV

    result = subprocess.run(course_tasks().book_command(root), cwd=root, env={**os.environ, **OFFLINE_ENV},
                            capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.slow
def test_a_cell_that_raises_fails_every_build(tmp_path):
    # One chapter whose second cell raises. The build must fail, and must fail again when run a second
    # time with nothing changed: a failed page must not be stored as done (with --keep-going, a plain
    # execution warning would be). The next test builds the same site with the error fixed: the control.
    make_site(tmp_path, FAILING_CHAPTER)
    for attempt in ("first build", "second build, nothing changed"):
        code, log = build(tmp_path)
        assert code != 0, f"{attempt}: the build passed although a cell raised\n{log[-3000:]}"
        assert "ZeroDivisionError" in log, f"{attempt}: the log does not name the error\n{log[-3000:]}"


@pytest.mark.slow
def test_a_page_read_from_the_execution_cache_keeps_its_outputs(tmp_path):
    # The site of the test above with the error fixed builds (so the failures there came from the cell).
    make_site(tmp_path, FAILING_CHAPTER.replace("1 / 0", "1 / 1"))
    code, log = build(tmp_path)
    assert code == 0, log[-3000:]
    # A page read again with its outputs from the execution cache (here: the saved environment is
    # gone) must still offer its notebook for download with those outputs.
    (tmp_path / "_build" / ".doctrees" / "environment.pickle").unlink()
    code, log = build(tmp_path)
    assert code == 0 and "Using cached notebook" in log, log[-3000:]
    notebook = json.loads((tmp_path / "_build" / "html" / "_sources" / "book" / "chapter.ipynb").read_text())
    outputs = [o for c in notebook["cells"] for o in c.get("outputs", [])]
    assert ["".join(o["text"]) for o in outputs if o["output_type"] == "stream"] == ["before the error\n"], outputs
    assert ["".join(o["data"]["text/plain"]) for o in outputs if o["output_type"] == "execute_result"] == ["1.0"]
