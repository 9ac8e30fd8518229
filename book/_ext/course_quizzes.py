"""Sphinx extension of the course website: the chapters' quizzes in every edition's language.

A quiz is a code cell that calls jupyterquiz's ``display_quiz`` with its questions, in English, and its output
is a script that holds them as JSON (``var questions<id>=[...]``). The cell runs once, in the English build
(the execution cache serves every edition), so the questions cannot be translated by running it again in
another language. They are translated where the prose is, in the chapter's gettext catalog:

1. when a page is read, each quiz's words (its questions, answers and feedback) are put beside it as
   ``quiz_text`` nodes, which Sphinx's gettext builder extracts into the chapter's .pot like a paragraph,
   and which Sphinx's translation step (``Locale``) fills from the chapter's .po, word for word (a quiz's
   text is not parsed as Markdown);
2. when the page is written as HTML, the quiz's JSON is rewritten with those texts, and the nodes go.

So a chapter's quiz needs nothing in its code cell: its English stays there, and its translation is in the
chapter's .po beside the prose's. jupyterquiz's own words ("Correct!") come from the course catalog.
"""

from __future__ import annotations

import json
import re
from typing import Any

from course_editions import N_, translate  # book/_ext is on sys.path in a Sphinx build
from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform

QUIZ_DATA = re.compile(r"var questions(?P<id>[A-Za-z]+)=")
TEXT_KEYS = ("question", "answer", "feedback")  # where jupyterquiz keeps the words a reader sees


# jupyterquiz's own feedback, in its script (shown where a question gives no feedback of its own)
QUIZ_WORDS = (N_("Correct!"), N_("Incorrect -- try again."), N_("Incorrect. Try again."), N_("Correct"),
              N_("Type numeric answer here:"), N_("Type your answer here:"))


class quiz_text(nodes.Inline, nodes.Element, addnodes.translatable):  # noqa: N801  (docutils names nodes so)
    """One string of a quiz, translatable like a paragraph but taken word for word."""

    def preserve_original_messages(self) -> None:
        self.setdefault("original", self["text"])

    def apply_translated_message(self, original_message: str, translated_message: str) -> None:
        self["text"] = translated_message

    def extract_original_messages(self) -> list[str]:
        return [self["original"]]


class quiz_strings(nodes.General, nodes.Element):  # noqa: N801
    """The ``quiz_text`` nodes of one quiz (``quiz`` names it); never written."""


def quiz_json(script: str) -> list[tuple[str, int, int, Any]]:
    """Each quiz in a script: (id, start, end of its JSON, the parsed questions)."""
    decoder = json.JSONDecoder()
    found = []
    for match in QUIZ_DATA.finditer(script):
        try:
            questions, end = decoder.raw_decode(script, match.end())
        except json.JSONDecodeError:
            continue
        found.append((match["id"], match.end(), end, questions))
    return found


def quiz_strings_of(questions: Any) -> list[str]:
    """The words of a quiz, in reading order, each once: the strings under TEXT_KEYS that hold a letter."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in TEXT_KEYS and isinstance(item, str) and any(c.isalpha() for c in item):
                    if item not in found:
                        found.append(item)
                else:
                    walk(item)

    walk(questions)
    return found


def translated_questions(questions: Any, translations: dict[str, str]) -> Any:
    """``questions`` with every string under TEXT_KEYS replaced by its translation, where there is one."""
    if isinstance(questions, list):
        return [translated_questions(q, translations) for q in questions]
    if isinstance(questions, dict):
        return {k: (translations.get(v, v) if k in TEXT_KEYS and isinstance(v, str) else
                    translated_questions(v, translations)) for k, v in questions.items()}
    return questions


def is_quiz_script(node: nodes.Node) -> bool:
    return isinstance(node, nodes.raw) and "html" in node.get("format", "") and bool(QUIZ_DATA.search(node.astext()))


class CollectQuizText(SphinxTransform):
    """Step 1: the words of each quiz on the page, as translatable nodes (before Sphinx translates)."""

    default_priority = 5  # before PreserveTranslatableMessages (10) and Locale (20)

    def apply(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(is_quiz_script)):
            for quiz_id, _start, _end, questions in quiz_json(node.astext()):
                holder = quiz_strings(quiz=quiz_id)
                for text in quiz_strings_of(questions):
                    holder += quiz_text(text=text, original=text)
                self.document += holder


class TranslateQuizzes(SphinxPostTransform):
    """Step 2: each quiz's JSON with the texts of its ``quiz_text`` nodes, and jupyterquiz's own words."""

    default_priority = 100
    formats = ("html",)

    def run(self, **kwargs: Any) -> None:
        holders = {h["quiz"]: h for h in self.document.findall(quiz_strings)}
        for node in list(self.document.findall(is_quiz_script)):
            script = node.astext()
            for quiz_id, start, end, questions in reversed(quiz_json(script)):
                holder = holders.get(quiz_id)
                texts = {t["original"]: t["text"] for t in holder.findall(quiz_text)} if holder else {}
                data = json.dumps(translated_questions(questions, texts), ensure_ascii=False)
                script = script[:start] + data.replace("</", "<\\/") + script[end:]
            for word in QUIZ_WORDS:
                script = script.replace(json.dumps(word), json.dumps(translate(self.app, word), ensure_ascii=False))
            node.children[:] = [nodes.Text(script)]
        for holder in holders.values():
            holder.parent.remove(holder)


def skip(self: Any, node: nodes.Node) -> None:
    raise nodes.SkipNode


def setup(app: Any) -> dict[str, Any]:
    app.add_node(quiz_strings, html=(skip, None), latex=(skip, None), text=(skip, None), man=(skip, None),
                 texinfo=(skip, None))
    app.add_node(quiz_text)
    app.add_transform(CollectQuizText)
    app.add_post_transform(TranslateQuizzes)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
