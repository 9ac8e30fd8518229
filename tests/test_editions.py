"""The editions of the website (English, 简体中文, 繁體中文) and their catalogs (book/_ext/course_build.py).

* the catalog check lists, per catalog, every message of the English text that is missing, untranslated or
  fuzzy (a planted catalog), and the catalogs marked finished pass it;
* zh_TW's text is zh_CN's through OpenCC (s2twp), code spans untouched, then the reviewed exceptions;
* an edition's links to the files it shares with the English edition lead there;
* a quiz's words are extracted into its chapter's catalog and shown translated in each edition, its cell
  executed once for all editions (a small site, built with the command of ``python3 tasks.py book``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from course_files import course_tasks, site_extension
from test_site import base_url, browser, site  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "book" / "_ext"
TEMPLATES = ROOT / "_build" / "gettext" / "pot"  # what python3 tasks.py book extracts from the English text
CATALOGS = ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES"
# The catalogs held to the English text: the check fails on any message of theirs that is missing, untranslated
# or fuzzy, so an English change without its translation fails. Every page is translated, so every catalog is held
# to it (EVERY_CATALOG); FINISHED names the catalogs that must exist whatever the pages are.
FINISHED = ["course", "book/index"]
EVERY_CATALOG = True


def site_module(name: str):
    """A module of book/_ext (the site's extensions and its build), by file: its siblings importable."""
    return site_extension(name)


def course_build():
    return site_module("course_build")


def write_po(path: Path, messages: list[tuple[str, str, bool]]) -> None:
    """A catalog of (msgid, msgstr, fuzzy) messages."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po as babel_write_po

    catalog = Catalog(locale="zh_CN")
    for msgid, msgstr, fuzzy in messages:
        catalog.add(msgid, msgstr, flags=["fuzzy"] if fuzzy else [])
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        babel_write_po(f, catalog)


# ---- the catalog check ----------------------------------------------------------------------------------
def test_the_catalog_check_lists_every_message_left_to_translate(tmp_path):
    pot, po = tmp_path / "pot", tmp_path / "po"
    write_po(pot / "book" / "chapter.pot", [(m, "", False) for m in ("Masking", "Fine-tuning", "GLUE", "New")])
    write_po(po / "book" / "chapter.po", [("Masking", "掩盖", False), ("Fine-tuning", "", False),
                                          ("GLUE", "任务集 GLUE", True), ("Old text", "旧的", False)])
    write_po(pot / "book" / "done.pot", [("Pretraining", "", False)])
    write_po(po / "book" / "done.po", [("Pretraining", "预训练", False)])
    write_po(pot / "book" / "new.pot", [("A page with no catalog", "", False)])
    problems = course_build().catalog_problems(pot, po)
    assert problems == {
        "book/chapter": ["untranslated: Fine-tuning", "fuzzy: GLUE", "missing: New"],
        "book/new": ["missing: A page with no catalog"],
    }
    assert course_build().catalog_problems(pot, po, domains=["book/done"]) == {}


def test_the_finished_catalogs_are_complete():
    if not TEMPLATES.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{TEMPLATES} is missing: python3 tasks.py book extracts it")
        pytest.skip(f"{TEMPLATES} is missing: build the site first (python3 tasks.py book)")
    problems = course_build().catalog_problems(TEMPLATES, CATALOGS, None if EVERY_CATALOG else FINISHED)
    report = "\n".join(f"{domain}.po:\n  " + "\n  ".join(missing) for domain, missing in problems.items())
    assert not problems, ("messages of the English text without their translation (python3 tasks.py catalogs "
                          f"updates the catalogs; translate them in book/locales/zh_CN):\n{report}")
    for domain in FINISHED:  # a finished catalog that no page produces any more is a typo here
        assert (TEMPLATES / f"{domain}.pot").is_file(), domain


# ---- the glossary's terms ---------------------------------------------------------------------------------
GLOSSARY_ENTRY = re.compile(r"^(\S[^\n]*)\n  \*\*([^*]+)\*\*", re.M)  # book/glossary.md: term, then **中文**
NOT_PROSE = re.compile(r"\{[\w:-]+\}`[^`]*`|`[^`]*`|\$\$.*?\$\$|\$[^$]*\$", re.S)  # roles, code, math


def glossary_terms(text: str) -> dict[str, list[str]]:
    """English term -> the Chinese forms the glossary gives it ("掩盖（盖住）": 掩盖 or 盖住; a Latin name inside a
    form, as in 任务集 GLUE, counts alone too)."""
    terms = {}
    for english, chinese in GLOSSARY_ENTRY.findall(text):
        forms = [f.strip() for f in re.split(r"[（）()]", chinese) if f.strip()]
        forms += [w for f in forms for w in re.findall(r"[A-Za-z][\w-]*", f)]
        terms[english.strip().lower()] = forms
    return terms


# English words of the glossary that the chapters also use in another sense, with another Chinese word
AMBIGUOUS = {"head": "also one head of multi-head attention (注意力头), not only a task's output head (输出头)",
             "transformer": "also the transformers library, whose name is not translated"}


def inconsistent_terms(messages: list[tuple[str, str]], terms: dict[str, list[str]]) -> list[str]:
    """Each (msgid, msgstr) whose English prose names a glossary term (longest terms first, so that "attention
    head" is not also read as "head") while the translation uses none of the term's Chinese forms."""
    found = []
    for msgid, msgstr in messages:
        if not msgstr or re.fullmatch(r"\{term\}`[^`]+`", msgid.strip()) or "\\mathrm" in msgid:
            continue  # a glossary table's English cell, or display math
        prose = NOT_PROSE.sub(" ", msgid).lower()
        for english in sorted(terms, key=len, reverse=True):
            pattern = re.compile(r"\b" + re.escape(english) + r"(?:s|es)?\b")
            if len(english) < 4 or english in AMBIGUOUS or not pattern.search(prose):
                continue
            prose = pattern.sub(" ", prose)
            if not any(form.lower() in msgstr.lower() for form in terms[english]):
                found.append(f"{english} -> {' / '.join(terms[english])}: {msgstr[:80]}")
    return found


def test_the_term_check_finds_a_term_translated_another_way():
    terms = glossary_terms("masking\n  **掩盖（盖住）** — hiding tokens.\n\nhead\n  **输出头** — a layer.\n\n"
                           "attention head\n  **注意力头** — one of several.\n")
    assert terms["masking"] == ["掩盖", "盖住"]
    good = [("Masking hides tokens.", "随机盖住一些词元。"), ("Each attention head attends.", "每个注意力头各自计算。")]
    assert inconsistent_terms(good, terms) == []
    assert len(inconsistent_terms([("Masking hides tokens.", "遮盖一些词元。")], terms)) == 1
    assert len(inconsistent_terms([("A new attention head.", "一个新的头。")], terms)) == 1


def test_every_catalog_translates_the_glossary_terms_as_the_glossary_does():
    from babel.messages.pofile import read_po

    terms = glossary_terms((ROOT / "book" / "glossary.md").read_text(encoding="utf-8"))
    problems = []
    for po in sorted((CATALOGS / "book").glob("*.po")):
        if po.stem == "glossary":  # the glossary page itself is the list
            continue
        with po.open("rb") as f:
            messages = [(m.id, m.string) for m in read_po(f) if m.id and isinstance(m.id, str)]
        problems += [f"{po.name}: {p}" for p in inconsistent_terms(messages, terms)]
    assert not problems, "\n".join(problems)


# ---- zh_TW from zh_CN -----------------------------------------------------------------------------------
def test_traditional_text_keeps_code_and_follows_the_reviewed_exceptions():
    import opencc

    build = course_build()
    converter = opencc.OpenCC(build.OPENCC_CONFIG)
    overrides = build.read_overrides(ROOT / "book" / "locales" / build.OVERRIDES)
    text = "预训练的参数保存在文件里，运行 `台湾大[MASK]` 的示例。"
    converted = build.to_traditional(text, converter, overrides)
    assert converted == "預訓練的參數儲存在檔案裡，執行 `台湾大[MASK]` 的範例。", converted
    assert "引數" in converter.convert("参数") and "參數" in converted  # the exception is needed, and applied


def test_an_edition_leads_to_the_files_it_shares_with_the_english_one(tmp_path):
    build = course_build()
    english, edition = tmp_path / "html", tmp_path / "zh_CN"
    for root, own in ((english, "en"), (edition, "zh")):
        (root / "_static").mkdir(parents=True)
        (root / "_static" / "theme.js").write_text("shared")
        (root / "_static" / "documentation_options.js").write_text(own)  # one of OWN_FILES
        (root / "_static" / "course-cjk.css").write_text("same bytes, but names the edition's own font")
        (root / "book").mkdir()
    (edition / "_static" / "only-here.css").write_text("zh")
    # the chapter's downloadable notebook, the English source in every edition: each build leaves its own cell ids
    for root, ids in ((english, "a1"), (edition, "b2")):
        (root / "_sources").mkdir()
        (root / "_sources" / "page.ipynb").write_text(json.dumps({"cells": [{"id": ids, "source": "print(1)"}]}))
        (root / "_sources" / "page.md").write_text(f"a page's source ({ids})")  # not a notebook: its own
    page = ('<script src="../_static/theme.js?v=1"></script><script src="../_static/documentation_options.js">'
            '</script><link href="../_static/course-cjk.css"><link href="../_static/only-here.css">'
            '<a href="../_sources/page.ipynb"><a href="../_sources/page.md">')
    (edition / "book" / "page.html").write_text(page)
    assert build.publish_edition(edition, english, english / "zh-cn") == 2
    published = (english / "zh-cn" / "book" / "page.html").read_text()
    assert published == page.replace('"../_static/theme.js', '"../../_static/theme.js').replace(
        '"../_sources/page.ipynb', '"../../_sources/page.ipynb')
    assert sorted(p.name for p in (english / "zh-cn" / "_static").iterdir()) == [
        "course-cjk.css", "documentation_options.js", "only-here.css"]
    assert [p.name for p in (english / "zh-cn" / "_sources").iterdir()] == ["page.md"]


# ---- quizzes --------------------------------------------------------------------------------------------
QUESTIONS = [{"question": "What does BERT's pretraining read?", "type": "multiple_choice", "answers": [
    {"answer": "Unlabelled text", "correct": True, "feedback": "Right: no labels of any task."},
    {"answer": "4/3", "correct": False, "feedback": "No: that is a number."}]}]


def test_a_quizs_words_are_found_and_replaced_in_its_script():
    from jupyterquiz.dynamic.loader import load_questions_script

    course_quizzes = site_module("course_quizzes")
    script = load_questions_script(QUESTIONS, "AbCdEfGhIjKl")[0] + "/* the rest of jupyterquiz */"
    (quiz_id, start, end, questions), = course_quizzes.quiz_json(script)
    assert quiz_id == "AbCdEfGhIjKl" and questions == QUESTIONS and script[end:].startswith(";")
    words = course_quizzes.quiz_strings_of(questions)
    assert words == ["What does BERT's pretraining read?", "Unlabelled text", "Right: no labels of any task.",
                     "No: that is a number."]  # "4/3" has no word to translate
    translated = course_quizzes.translated_questions(questions, {"Unlabelled text": "没有标注的文本"})
    assert translated[0]["answers"][0]["answer"] == "没有标注的文本" and translated[0]["answers"][1]["answer"] == "4/3"


QUIZ_CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Masking

BERT learns by filling in blanks.

```{code-cell} ipython3
from jupyterquiz import display_quiz

display_quiz(QUESTIONS)
```

```{code-cell} ipython3
from myst_nb import glue

glue("verdict", "above zero", display=False)
```

The interval is {glue:text}`verdict`.
""".replace("QUESTIONS", repr(QUESTIONS))
QUIZ_CATALOG = [("Masking", "掩盖", False), ("BERT learns by filling in blanks.", "BERT 通过填空来学习。", False),
                ("What does BERT's pretraining read?", "BERT 的预训练读的是什么？", False),
                ("Unlabelled text", "没有标注的文本", False),
                ("Right: no labels of any task.", "对：不需要任何任务的标注。", False),
                ("No: that is a number.", "不对：那是一个数。", False),
                ("The interval is {glue:text}`verdict`.", "区间{glue:text}`verdict`。", False)]
GLUED = [("above zero", "整个高于零", False)]  # a glued phrase, in course.po


def quiz_data(page: Path) -> list:
    """The questions of the page's quiz, as its script holds them."""
    course_quizzes = site_module("course_quizzes")
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page.read_text(encoding="utf-8"), flags=re.S)
    found = [q for s in scripts for _id, _s, _e, q in course_quizzes.quiz_json(s)]
    assert len(found) == 1, f"{page}: {len(found)} quizzes"
    return found[0]


@pytest.mark.slow
def test_every_edition_shows_the_quiz_in_its_language_from_one_execution(tmp_path):
    for name in ("_config.yml", "book/references.bib"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(EXT, tmp_path / "book" / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/index\nchapters:\n  - file: book/chapter\n")
    (tmp_path / "book" / "index.md").write_text("# Index\n\nA out with one chapter.\n")
    (tmp_path / "book" / "chapter.md").write_text(QUIZ_CHAPTER)
    write_po(tmp_path / "book" / "locales" / "zh_CN" / "LC_MESSAGES" / "book" / "chapter.po", QUIZ_CATALOG)
    write_po(tmp_path / "book" / "locales" / "zh_CN" / "LC_MESSAGES" / "course.po", GLUED)
    from bertlab.hub import OFFLINE_ENV

    result = subprocess.run(course_tasks().book_command(tmp_path), cwd=tmp_path, env={**os.environ, **OFFLINE_ENV},
                            capture_output=True, text=True)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    steps = re.split(r"^\+ ", log, flags=re.M)[1:]  # one per Sphinx build (course_build.py prints its command)
    executed = [step.split("\n", 1)[0][-60:] for step in steps if "Executing notebook" in step]
    assert len(steps) == 4 and len(executed) == 1, f"the quiz cell should run once, for every edition: {executed}"
    out = tmp_path / "_build" / "html"
    english = quiz_data(out / "book" / "chapter.html")
    simplified = quiz_data(out / "zh-cn" / "book" / "chapter.html")
    traditional = quiz_data(out / "zh-tw" / "book" / "chapter.html")
    assert english == QUESTIONS
    assert simplified[0]["question"] == "BERT 的预训练读的是什么？"
    assert [a["answer"] for a in simplified[0]["answers"]] == ["没有标注的文本", "4/3"]
    assert traditional[0]["question"] == "BERT 的預訓練讀的是什麼？"
    assert [a["feedback"] for a in traditional[0]["answers"]] == ["對：不需要任何任務的標註。", "不對：那是一個數。"]
    assert "BERT 通過填空來學習。" in (out / "zh-tw" / "book" / "chapter.html").read_text(encoding="utf-8")
    # a phrase glued from the notebook's results reads in each edition's language, from course.po
    pasted = {folder: re.findall(r'<span class="pasted-text">([^<]*)</span>',
                                 (out / folder / "book" / "chapter.html").read_text(encoding="utf-8"))
              for folder in ("", "zh-cn/", "zh-tw/")}
    assert pasted == {"": ["above zero"], "zh-cn/": ["整个高于零"], "zh-tw/": ["整個高於零"]}
    # the quiz's words are in the chapter's template, for translators, and the catalog check is satisfied
    build = course_build()
    pot = tmp_path / "_build" / "gettext" / "pot"
    catalogs = tmp_path / "book" / "locales" / "zh_CN" / "LC_MESSAGES"
    assert "What does BERT's pretraining read?" in (pot / "book" / "chapter.pot").read_text(encoding="utf-8")
    assert build.catalog_problems(pot, catalogs, ["book/chapter"]) == {}
    assert "above zero" in build.glued_phrases(tmp_path) and "missing: above zero" not in " ".join(
        build.catalog_problems(pot, catalogs, ["course"]).get("course", []))
    write_po(catalogs / "course.po", [])  # without its translation, the phrase is a translator's task
    assert "missing: above zero" in build.catalog_problems(pot, catalogs, ["course"])["course"]
    assert "book/index" in build.catalog_problems(pot, catalogs)  # the index is not translated here
    # the switcher of each edition leads to the same page in every edition
    for folder in ("", "zh-cn/", "zh-tw/"):
        page = out / folder / "book" / "chapter.html"
        links = re.findall(r'<a href="([^"]+)" hreflang=', page.read_text(encoding="utf-8"))
        assert len(links) == 3 and all((page.parent / link).resolve().is_file() for link in links), links
        assert {(page.parent / link).resolve().relative_to(out.resolve()).as_posix() for link in links} == {
            "book/chapter.html", "zh-cn/book/chapter.html", "zh-tw/book/chapter.html"}


# ---- the built site, in Chromium -------------------------------------------------------------------------
TRANSLATED = ["zh-cn/", "zh-tw/"]  # course_editions.EDITIONS' folders, English's ("") aside
BUILT = ROOT / "_build" / "html"


def built_edition(folder: str) -> Path:
    if not (BUILT / folder / "index.html").is_file():
        if not (BUILT / "index.html").is_file():
            pytest.skip("the site is not built (python3 tasks.py book)")
        pytest.fail(f"the site has no {folder} edition: python3 tasks.py book builds every edition")
    return BUILT / folder


@pytest.fixture(scope="module")
def site_pages():
    from test_site import NOTEBOOKS, PAGES

    return PAGES, NOTEBOOKS


def test_pages_of_the_translated_editions_render_completely_offline(browser, base_url, site_pages):  # noqa: F811
    """Every page of each Chinese edition, as tests/test_site.py checks the English ones: no error, no request
    leaving the machine, no broken link or image, math typeset, and no Chinese drawn without the course font."""
    from test_site import cjk_font_problems, open_page, page_problems

    pages, notebooks = site_pages
    problems = []
    for folder in TRANSLATED:
        built_edition(folder)
        for page_path in pages:
            page, found = open_page(browser, base_url + folder + page_path + ".html")
            has_math = "$" in (ROOT / f"{page_path}.md").read_text(encoding="utf-8")
            found += page_problems(page, base_url, has_math=has_math, is_chapter=page_path in notebooks)
            found += cjk_font_problems(page)
            page.close()
            problems += [f"{folder}{page_path}: {p}" for p in found]
    assert not problems, "\n".join(problems)


def test_the_switcher_leads_to_the_same_page_in_every_edition(browser, base_url):  # noqa: F811
    from test_site import open_page

    page_path = "book/masking.html"
    for folder in ["", *TRANSLATED]:
        built_edition(folder)
        for target in ["", *TRANSLATED]:
            page, problems = open_page(browser, base_url + folder + page_path)
            link = page.locator(f'.course-language a[href$="{target}{page_path}"]').first
            link.click()
            page.wait_for_load_state("load")
            landed = page.url
            current = page.locator('.course-language a[aria-current="page"]').first.get_attribute("href")
            page.close()
            assert landed == base_url + target + page_path, (folder, target, landed)
            assert current.endswith(target + page_path) and not problems, (current, problems)


def test_a_chinese_search_finds_the_chapter(browser, base_url):  # noqa: F811
    """The Chinese editions split Chinese into words (jieba): 监督 ("supervision"), a word inside 自监督学习 in the
    chapter's glossary table, finds chapter 1. The English edition's search, with no word splitter, cannot."""
    from test_site import open_page

    found = {}
    for folder in ["", "zh-cn/"]:
        built_edition(folder)
        page, _ = open_page(browser, base_url + folder + "search.html?q=监督")
        page.wait_for_function("() => !document.querySelector('#search-progress') || "
                               "document.querySelector('#search-progress').textContent.trim() !== ''", timeout=20000)
        page.wait_for_timeout(500)
        found[folder] = page.eval_on_selector_all("#search-results a", "els => els.map(e => e.href)")
        page.close()
    assert any(h.split("?")[0].endswith("zh-cn/book/self_supervised_learning.html") for h in found["zh-cn/"]), found
    assert not any("self_supervised_learning" in h for h in found[""]), found  # the control: jieba made the difference


def test_each_edition_has_a_web_font_for_all_its_characters():
    """Each edition's subset of the course font holds every CJK character of its pages and scripts (the 繁體
    forms included), in its own face: Taiwan's standard glyphs (Noto Sans CJK TC) for the zh-tw edition."""
    from fontTools.ttLib import TTFont

    fonts = site_module("course_fonts")
    for folder, family in [("", "Noto Sans CJK SC"), ("zh-cn/", "Noto Sans CJK SC"), ("zh-tw/", "Noto Sans CJK TC")]:
        edition = built_edition(folder)
        chars: set[str] = set()
        for path in edition.rglob("*"):
            parts = path.relative_to(edition).parts
            if path.suffix in (".html", ".js") and parts[0] != "_static" and (folder or parts[0] not in
                                                                                 ("zh-cn", "zh-tw")):
                chars.update(fonts.CJK.findall(path.read_text(encoding="utf-8", errors="ignore")))
        font = TTFont(str(edition / "_static" / fonts.FONT_FILE))
        missing = sorted(c for c in chars if ord(c) not in font.getBestCmap())
        assert not missing, f"{folder or 'English'}: characters missing from its font: {''.join(missing)}"
        assert font["name"].getDebugName(1) == family, (folder, font["name"].getDebugName(1))
        if folder == "zh-tw/":
            assert "監" in chars, "the zh-tw edition should hold Traditional characters"


def test_the_live_demo_answers_in_every_edition(browser, base_url):  # noqa: F811
    from test_site import open_page

    for folder, run in [("", "Run"), ("zh-cn/", "运行"), ("zh-tw/", "執行")]:
        built_edition(folder)
        page, problems = open_page(browser, base_url + folder + "book/masking.html")
        page.evaluate("() => window.courseDemos.ready")
        box = page.locator('.course-demo[data-demo="fill-mask"]')
        box.locator(".course-demo-input").fill("今天的天[MASK]很好。")
        button = box.locator("button.course-demo-run")
        label = button.inner_text()
        button.click()
        page.wait_for_function("() => (window.courseDemos.results['fill-mask'] || {}).text === '今天的天[MASK]很好。'")
        rows = box.locator(".course-demo-table tbody tr").count()
        page.close()
        assert label == run and rows == 5 and not problems, (folder, label, rows, problems)
