"""Prose that cannot drift from its results: no number typed into a chapter's prose unless it is listed.

A measured number reaches a chapter's prose only from the build: a code cell computes it (or reads it from a
stored results file) and hands it over with ``bertlab.notebook.glue`` (which stores what myst-nb's ``glue``
stores), and the prose shows it with a role such as {glue:text}`masked_share:.1%`. A number typed into the
prose instead is the same until the code or a retrained model changes the result, and then it is wrong
(``ex-masking-1`` said "about 0.4" beside a solution that printed 0.00015).

What counts as prose: every line of a page of _toc.yml outside its code cells and other code blocks, its math
($...$, $$...$$, ``{math}``), inline code, roles ({glue:text}, {cite:p}, {term}, {doc}, ...), link targets,
labels and directive options (the title and body of an ``{exercise}`` or ``{glossary}`` are prose). A number
there is a run of digits (with a decimal point, thousands commas, a sign, ``/`` or ``-`` joining parts such as
80/10/10, and a unit such as %, k, M, B, T, x) that is not part of a name (GPT-2, T5, all-MiniLM-L6-v2).
Numbers spelt out in words ("twelve") are not found.

Numbers from the literature (with their citation) and numbers that are definitions, not measurements (BERT's
15 % and 80/10/10 rule, BERT-base's 12 layers, a chapter's number, a year, a setting that the code beside it
states), are exempt only through book/_numbers.yml: per page, each entry the text as it appears in the prose
(the number, or a phrase around it when the bare number would also let a measurement through) and why. An entry
that exempts nothing is an error too, so the list shrinks with the prose.

Also here: every glue key that a page's prose shows is glued by a code cell of that page (or of the page that a
``page.md::key`` reference names), that bertlab's glue stores what myst-nb's does, and that the check fails on
a planted typed measurement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from chapter_code import code_cells

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
EXEMPTIONS = BOOK / "_numbers.yml"
# Pages whose prose is rewritten in other work: expected to fail until then (the check runs, the failure is shown).
BEING_REWRITTEN = {
    "instructors.md": "its grading benchmarks are typed in; the grader's page, converted with bench/autograde.py",
}

FENCE = re.compile(r"^(`{3,}|:{3,})\s*(.*)$")
DIRECTIVE = re.compile(r"\{([^}]+)\}\s*(.*)")
# Directives whose body is code, math or a reference, not prose.
NOT_PROSE = {"code-cell", "code", "code-block", "literalinclude", "interface", "course-demo", "math", "raw",
             "solution-start", "solution-end", "tableofcontents", "bibliography", "glue", "glue:any", "glue:figure",
             "glue:math", "glue:md", "glue:text", "eval-rst", "mermaid"}
OPTION = re.compile(r"^\s*:[\w-]+:")
LABEL = re.compile(r"^\s*\(\S+\)=\s*$")
LIST_MARKER = re.compile(r"^(\s*)\d+[.)](?=\s)")  # "1. " opens a numbered list item: a marker, not a number
INLINE_NOT_PROSE = [
    re.compile(r"\{[\w:-]+\}`[^`]*`"),  # roles: {glue:text}`key:.1f`, {cite:p}`key`, {term}`80/10/10 rule`, ...
    re.compile(r"(`+)[^`].*?\1"),  # inline code
    re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^$\n]+?\$"),  # inline math
    re.compile(r"\]\([^)\s]*\)"),  # a link's target (its text is prose)
    re.compile(r"<https?://[^>]*>|https?://\S+"),  # bare links
    re.compile(r"<!--.*?-->"),  # comments
]
PART = r"\d+(?:,\d{3})*(?:\.\d+)?"
NUMBER = re.compile(
    rf"(?<![A-Za-z0-9_.,/\\-])(?<![A-Za-z]-)[-−]?{PART}(?:[/-]{PART})*(?:\s?%|[kMBTx×](?![A-Za-z]))?")
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")


@dataclass(frozen=True)
class Typed:
    line: int
    number: str
    context: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.number!r} in “{self.context}”"


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every prose line of a MyST page: without front matter, code, math and options."""
    lines = text.splitlines()
    start = 0
    if lines and lines[0].strip() == "---":  # the jupytext front matter
        start = next(i for i in range(1, len(lines)) if lines[i].strip() == "---") + 1
    out: list[tuple[int, str]] = []
    fences: list[tuple[str, bool]] = []  # the open fences: (fence, is its body prose?)
    options = in_math = False
    for number, line in enumerate(lines[start:], start + 1):
        stripped = line.strip()
        if in_math:
            in_math = not stripped.endswith("$$")
            continue
        fence = FENCE.match(stripped)
        if fence and fences and fence[1] == fences[-1][0] and not fence[2]:
            fences.pop()
            options = False
            continue
        if fence and (not fences or fences[-1][1]):
            directive = DIRECTIVE.match(fence[2])
            prose = bool(directive) and directive[1] not in NOT_PROSE
            fences.append((fence[1], prose))
            options = prose
            if prose and directive[2]:
                out.append((number, directive[2]))  # an exercise's title, an admonition's
            continue
        if fences and not fences[-1][1]:
            continue
        if options and OPTION.match(line):
            continue
        options = False
        if stripped.startswith("$$"):
            in_math = not (len(stripped) > 3 and stripped.endswith("$$"))
            continue
        if LABEL.match(line):
            continue
        out.append((number, LIST_MARKER.sub(r"\1", line)))
    return out


def prose_text(text: str) -> tuple[str, list[int]]:
    """The page's prose as one string (whitespace runs made single spaces, inline code, math and roles blanked
    out) and the source line of each of its characters."""
    chars: list[str] = []
    where: list[int] = []
    for number, line in prose_lines(text):
        for pattern in INLINE_NOT_PROSE:
            line = pattern.sub(lambda m: " " * len(m[0]), line)
        for ch in line + " ":
            if ch.isspace() and chars and chars[-1] == " ":
                continue
            chars.append(" " if ch.isspace() else ch)
            where.append(number)
    return "".join(chars), where


def phrase_pattern(phrase: str) -> re.Pattern:
    """An exemption's text, found as written (any whitespace between its words), never inside a longer number
    or word: "15%" is not found in "115%", nor "chapter 3" in "chapter 30"."""
    body = r"\s+".join(re.escape(word) for word in phrase.split())
    end = r"(?![A-Za-z0-9_])" if phrase[-1].isascii() and phrase[-1].isalnum() else ""
    return re.compile(rf"(?<![A-Za-z0-9_.,]){body}{end}")


def typed_numbers(text: str, exempt: list[str] = ()) -> tuple[list[Typed], list[str]]:
    """The numbers typed into a page's prose that no exemption covers, and the exemptions that covered nothing."""
    prose, where = prose_text(text)
    covered: set[int] = set()
    unused = []
    for phrase in exempt:
        spans = [m.span() for m in phrase_pattern(phrase).finditer(prose)]
        if not spans:
            unused.append(phrase)
        for a, b in spans:
            covered.update(range(a, b))
    found = []
    for m in NUMBER.finditer(prose):
        if not set(range(*m.span())) <= covered:
            context = prose[max(0, m.start() - 60):m.end() + 60].strip()
            found.append(Typed(where[m.start()], m[0].strip(), context))
    return found, unused


def toc_pages() -> list[str]:
    """The pages of the website, as file names under book/ (the root and every chapter of _toc.yml)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [Path(f).name + ".md" for f in files]


def exemptions() -> dict[str, list[dict]]:
    return yaml.safe_load(EXEMPTIONS.read_text(encoding="utf-8")) or {}


def page_param(page: str):
    if page in BEING_REWRITTEN:
        return pytest.param(page, marks=pytest.mark.xfail(strict=False, reason=BEING_REWRITTEN[page]))
    return page


PAGES = toc_pages()


@pytest.mark.parametrize("page", [page_param(p) for p in PAGES])
def test_no_number_is_typed_into_the_prose(page):
    entries = exemptions().get(page, [])
    typed, unused = typed_numbers((BOOK / page).read_text(encoding="utf-8"), [e["text"] for e in entries])
    assert not typed, (f"{page}: numbers typed into the prose. A measured number comes from the build (glue it "
                       "from the cell that computes it); a number from the literature or a definition goes into "
                       "book/_numbers.yml with its reason:\n" + "\n".join(map(str, typed)))
    assert not unused, f"{page}: entries of book/_numbers.yml that exempt nothing (remove them): {unused}"


def test_every_exemption_has_its_reason_and_its_page():
    for page, entries in exemptions().items():
        assert page in PAGES, f"book/_numbers.yml lists {page}, which is not a page of _toc.yml"
        for entry in entries:
            assert set(entry) == {"text", "why"} and str(entry["why"]).strip(), (page, entry)
            assert NUMBER.search(entry["text"]), f"{page}: {entry['text']!r} holds no number"
        texts = [e["text"] for e in entries]
        assert len(texts) == len(set(texts)), f"{page}: an entry is listed twice"


PLANTED = """\
---
jupytext: {}
---
# A chapter

```{code-cell} ipython3
share = 0.15 * 2000
glue("share", share, display=False)
```

We mask 2,000 sentences.
The share of chosen tokens moves to about 0.4; the split among the chosen stays.

BERT hides 15% of the tokens {cite:p}`devlin2019bert`; here {glue:text}`share:.1f` of them, as chapter 3 said, and
`mlm_probability=0.4` in code, $0.15 \\times n$ in math, [a link](https://example.org/2024/07) and GPT-2.

```{exercise} Another rate
:label: ex-masking-1

Repeat with a rate of 3 of 5.
```

$$
p = 0.25
$$
"""


def test_a_typed_measurement_is_caught():
    """The planted page: each typed number is found, on its own line, and nothing that is not prose."""
    typed, unused = typed_numbers(PLANTED, ["15%", "chapter 3", "2,000 sentences", "7 of 9"])
    assert [(t.line, t.number) for t in typed] == [(12, "0.4"), (20, "3"), (20, "5")], typed
    assert unused == ["7 of 9"]  # an exemption that covers nothing is reported
    # without its exemption, "2,000 sentences" is a typed number like any other
    assert "2,000" in [t.number for t in typed_numbers(PLANTED)[0]]


def test_an_exemption_covers_its_own_phrase_only():
    typed, _ = typed_numbers("See chapter 3, where 3 of the draws were random.", ["chapter 3"])
    assert [t.number for t in typed] == ["3"] and "3 of the draws" in typed[0].context


@pytest.mark.parametrize("text, numbers", [
    ("BERT's 80/10/10 rule and its 15 % rate", ["80/10/10", "15 %"]),
    ("the labels are -100 outside, from 768 to 1024, 1.6T and 94M and 1.47x", ["-100", "768", "1024", "1.6T", "94M",
                                                                             "1.47x"]),
    ("GPT-2, T5, wav2vec, all-MiniLM-L6-v2, MNLI-m and ex-masking-1 are names", []),
    ("1. A numbered item with no number in it", []),
    ("a 513th position", ["513"]),
])
def test_what_counts_as_a_number(text, numbers):
    assert [t.number for t in typed_numbers(text)[0]] == numbers


def glued_keys(page_text: str) -> list[re.Pattern]:
    """The string literals of a page's code cells, as patterns: a key glued there matches one of them (a field of
    an f-string, f"example{number}_tokens", matches any text)."""
    found = []
    for cell in code_cells(page_text):
        for m in re.finditer(r"""(f?)(["'])([\w.{}-]+)\2""", cell):
            parts = re.split(r"\{[^}]*\}", m[3]) if m[1] else [m[3]]
            found.append(re.compile(".+".join(map(re.escape, parts))))
    return found


@pytest.mark.parametrize("page", PAGES)
def test_every_glued_number_in_the_prose_is_glued_by_a_cell(page):
    text = (BOOK / page).read_text(encoding="utf-8")
    missing = []
    for _, line in prose_lines(text):
        for reference in GLUE_ROLE.findall(line):
            target, _, key = reference.rpartition("::")
            key = key.split(":")[0]
            source = (BOOK / target).with_suffix(".md").read_text(encoding="utf-8") if target else text
            if not any(pattern.fullmatch(key) for pattern in glued_keys(source)):
                missing.append(reference)
    assert not missing, f"{page}: glue keys shown in the prose that no code cell glues: {missing}"


@pytest.mark.parametrize("value, stored", [(3908, 3908), (0.15, 0.15), ("once", "once"), (np.float64(0.25), 0.25),
                                           (np.int64(7), 7), (np.str_("，"), "，")])
def test_bertlab_glue_stores_what_myst_nb_glue_stores(monkeypatch, value, stored):
    """The chapters glue with bertlab.notebook.glue (a student's kernel has no myst-nb): its output must be the one
    that myst_nb.glue(name, value, display=False) makes, and the role must read the number back. (myst-nb comes
    with jupyter-book, which the dev extra installs; it is not declared by name, hence importorskip.)"""
    import builtins

    from bertlab import notebook

    myst_glue = pytest.importorskip("myst_nb.ext.glue")
    format_plain_text = pytest.importorskip("myst_nb.core.variables").format_plain_text

    outputs = []
    monkeypatch.setattr(myst_glue, "ipy_display", lambda *args, **kwargs: outputs.append((args, kwargs)))
    myst_glue.glue("key", stored, display=False)  # (its first call starts an IPython shell, which sets display)
    monkeypatch.setattr(builtins, "display", lambda *args, **kwargs: outputs.append((args, kwargs)), raising=False)
    notebook.glue("key", value)
    assert outputs[1] == outputs[0]
    (bundle,), _ = outputs[1]
    text = bundle[notebook.GLUE_PREFIX + "text/plain"]
    assert format_plain_text(text, "s") == str(stored)
    if isinstance(stored, float):
        assert format_plain_text(text, ".1%") == f"{stored:.1%}"


def test_bertlab_glue_refuses_what_the_prose_cannot_show():
    import torch

    from bertlab import notebook

    for value in (torch.tensor(0.5), [1, 2], True):
        with pytest.raises(TypeError):
            notebook.glue("key", value)
