"""The part-of-speech tag set of the People's Daily corpus (Peking University annotation guidelines).

`POS_TAGS` fixes the label ids of the POS-tagging task (id -> tag); `POS_TAG_NAMES` gives each tag an English
description for plots and tables. Tags ending in "g" (Ag, Ng, Vg, ...) mark a bound morpheme of that class,
a character that is not a word on its own, such as 翠 ("green") in 万里翠 ("ten thousand li of green").
"""

from __future__ import annotations

POS_TAG_NAMES: dict[str, str] = {
    "a": "adjective",
    "ad": "adjective used as adverb",
    "Ag": "adjective morpheme",
    "an": "adjective used as noun",
    "b": "non-predicate adjective",
    "Bg": "non-predicate adjective morpheme",
    "c": "conjunction",
    "d": "adverb",
    "Dg": "adverb morpheme",
    "e": "interjection",
    "f": "direction word",
    "g": "morpheme",
    "h": "prefix",
    "i": "idiom (chengyu)",
    "j": "abbreviation",
    "k": "suffix",
    "l": "fixed expression",
    "m": "numeral",
    "Mg": "numeral morpheme",
    "n": "noun",
    "Ng": "noun morpheme",
    "nr": "person name",
    "ns": "place name",
    "nt": "organisation name",
    "nx": "non-Chinese string",
    "nz": "other proper noun",
    "o": "onomatopoeia",
    "p": "preposition",
    "q": "measure word",
    "r": "pronoun",
    "Rg": "pronoun morpheme",
    "s": "place word",
    "t": "time word",
    "Tg": "time morpheme",
    "u": "auxiliary",
    "v": "verb",
    "vd": "verb used as adverb",
    "Vg": "verb morpheme",
    "vn": "verb used as noun",
    "w": "punctuation",
    "x": "non-morpheme character",
    "y": "modal particle",
    "Yg": "modal particle morpheme",
    "z": "descriptive word",
}
POS_TAGS: list[str] = list(POS_TAG_NAMES)
POS_TAG_IDS: dict[str, int] = {tag: i for i, tag in enumerate(POS_TAGS)}

# The January 1998 file has two tags that are in no guideline, each once: 面试/vvn ("interview", a verb used
# as a noun everywhere else in the corpus) and 镇国寺/na (Zhenguo Temple, a noun). They are read as vn and n.
TAG_FIXES: dict[str, str] = {"vvn": "vn", "na": "n"}


def normalise_tag(tag: str) -> str:
    """The tag as listed in POS_TAGS (after TAG_FIXES); an unknown tag is a ValueError."""
    tag = TAG_FIXES.get(tag, tag)
    if tag not in POS_TAG_IDS:
        raise ValueError(f"unknown part-of-speech tag {tag!r}; the People's Daily format uses the tags "
                         f"of bertlab.corpora.POS_TAGS: {' '.join(POS_TAGS)}.")
    return tag
