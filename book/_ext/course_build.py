"""Build the course website in every edition, and keep the translators' catalogs in step with the chapters.

    python book/_ext/course_build.py html [--source DIR] [--editions en zh_CN zh_TW]
    python book/_ext/course_build.py catalogs [--source DIR]

``html`` (what ``python3 tasks.py book`` runs) builds, each in a process of its own (Sphinx keeps its
translations in module globals, so one process holds one language):

1. English, the source, into ``_build/html``, exactly as ``jupyter-book build . --warningiserror --nitpick
   --keep-going`` would: this build executes the chapters into the execution cache ``_build/.jupyter_cache``;
2. the message templates of the English text (Sphinx's gettext builder on the English build's environment,
   so no page is read twice) into ``_build/gettext/``: what the catalog check compares the catalogs with;
3. the zh_TW catalogs, which nobody writes: OpenCC (``s2twp``, Taiwan's usage and phrases) converts zh_CN's
   into ``_build/locales/zh_TW/``, then the reviewed exceptions of ``book/locales/zh_TW/overrides.yml`` apply;
4. each translated edition into ``_build/editions/<language>/html``, from the same sources, with its
   catalogs; the notebooks' outputs come from the cache that step 1 filled, so no cell runs again; then the
   edition is copied into the site, at ``_build/html/<folder>/`` (``course_editions.EDITIONS``).

``catalogs`` is the translators' step: it runs 1 and 2, extracts the site extensions' own strings into
``_build/gettext/course.pot``, and updates ``book/locales/zh_CN/LC_MESSAGES/*.po`` with sphinx-intl, keeping
what is translated (a changed English message comes back fuzzy, a new one empty).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from course_editions import CONVERTED, COURSE_DOMAIN, EDITIONS, SOURCE, TRANSLATED, edition  # noqa: E402

OPENCC_CONFIG = "s2twp"  # Simplified -> Traditional with Taiwan's vocabulary and phrases
OVERRIDES = Path("zh_TW") / "overrides.yml"  # below book/locales: OpenCC's output -> the reviewed form
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)  # Markdown code: an example sentence stays as the model read it
# {glue:text}`key:format` of the page's own notebook, in a translated message (not already "doc::key")
OWN_GLUE = re.compile(r"\{glue:text\}`(?![^`]*::)([^`:]+)(?::([^`]*))?`")
GETTEXT = "gettext"  # the gettext builder's own folder below _build/; its templates in pot/


def locales(source: Path) -> Path:
    """The catalogs that translators write (one .po per chapter, plus course.po and sphinx.po)."""
    return source / "book" / "locales"


def build_dir(source: Path, language: str, builder: str = "html") -> Path:
    """Where an edition is built: English in _build (as jupyter-book does), the others in _build/editions/.

    The gettext builder needs doctrees of its own (Sphinx refuses an environment made for HTML)."""
    if builder == GETTEXT:
        return source / "_build" / GETTEXT
    return source / "_build" if language == SOURCE.language else source / "_build" / "editions" / language


def templates(source: Path) -> Path:
    """The message templates (.pot) of the English text, one per page, and course.pot."""
    return build_dir(source, SOURCE.language, GETTEXT) / "pot"


def with_page_glue(catalog: Any, page: str) -> Any:
    """A page's catalog whose glue roles name the page: ``{glue:text}`key:.1f``` -> ``{glue:text}`/page.md::key:.1f```.

    Sphinx parses a translated message as a small document of its own, which has none of the notebook's glue
    data, so myst-nb cannot fill a plain glue role there. A role that names its page is resolved later, from the
    glue data that the page's notebook left in the build, which works in a translated message too."""
    def name_page(match: re.Match) -> str:
        return f"{{glue:text}}`/{page}.md::{match[1]}:{match[2] or 's'}`"

    for message in catalog:
        if message.id and isinstance(message.string, str):
            message.string = OWN_GLUE.sub(name_page, message.string)
    return catalog


def sphinx_overrides(source: Path, language: str) -> dict[str, Any]:
    """The Sphinx settings of an edition, on top of _config.yml (what jupyter-book's own command line adds too)."""
    overrides: dict[str, Any] = {
        "external_toc_path": (source / "_toc.yml").as_posix(),
        "latex_individualpages": False,
        "nitpicky": True,  # jupyter-book --nitpick
        # One catalog per chapter (book/masking.po), not one for the folder; no line numbers, which would
        # change every catalog at every edit of a chapter.
        "gettext_compact": False,
        "gettext_location": False,
        "gettext_uuid": False,
        # one execution cache for every edition (myst-nb would put one beside each build folder)
        "nb_execution_cache_path": str(source / "_build" / ".jupyter_cache"),
    }
    if language != SOURCE.language:  # the catalogs that prepare_catalogs wrote
        overrides |= {"language": language, "locale_dirs": [str(source / "_build" / "locales")],
                      "html_search_language": "zh"}
    return overrides


def run_sphinx(source: Path, language: str, builder: str) -> int:
    """One Sphinx build of one edition, in this process (``course_build.py sphinx``)."""
    from jupyter_book.sphinx import build_sphinx

    out = build_dir(source, language, builder)
    output = templates(source) if builder == GETTEXT else out / "html"
    result = build_sphinx(source, output, noconfig=True, path_config=str(source / "_config.yml"),
                          confoverrides=sphinx_overrides(source, language), doctreedir=out / ".doctrees",
                          builder=builder, warningiserror=True, keep_going=True)
    if isinstance(result, BaseException):
        print(f"The {language} edition failed to build ({builder}): {result!r}", file=sys.stderr)
        return 1
    return int(result or 0)


def timings_file(source: Path) -> Path:
    """Seconds per step of the last ``html`` build (bench/site.py compares the editions with English)."""
    return source / "_build" / "editions" / "timings.json"


def sphinx_in_child(source: Path, language: str, builder: str, timings: dict[str, float] | None = None) -> None:
    """``run_sphinx`` in a fresh Python process; exits if it fails. Its time goes into ``timings``."""
    command = [sys.executable, str(Path(__file__)), "sphinx", "--source", str(source), "--edition", language,
               "--builder", builder]
    print("+", " ".join(command), flush=True)
    start = time.perf_counter()
    code = subprocess.run(command, cwd=source).returncode
    if code:
        sys.exit(f"The {language} edition failed to build ({builder}): exit code {code}.")
    if timings is not None:
        timings[f"{language} {builder}"] = round(time.perf_counter() - start, 1)


# ---- zh_TW from zh_CN --------------------------------------------------------------------------------
def read_overrides(path: Path) -> dict[str, str]:
    """The reviewed exceptions: OpenCC's output -> what the edition says instead."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    return {str(k): str(v) for k, v in (data or {}).items()}


def to_traditional(text: str, converter: Any, overrides: dict[str, str]) -> str:
    """``text`` in Taiwan's Traditional Chinese, code spans left as written, then the reviewed exceptions."""
    parts, last = [], 0
    for code in CODE_SPAN.finditer(text):
        parts += [converter.convert(text[last:code.start()]), code.group(0)]
        last = code.end()
    converted = "".join(parts) + converter.convert(text[last:])
    for found, reviewed in overrides.items():
        converted = converted.replace(found, reviewed)
    return converted


def convert_catalog(catalog: Any, converter: Any, overrides: dict[str, str]) -> Any:
    """A zh_CN catalog's translations in Taiwan's Traditional Chinese (in place); returns the catalog."""
    catalog.locale = CONVERTED
    for message in catalog:
        if isinstance(message.string, tuple):
            message.string = tuple(to_traditional(s, converter, overrides) for s in message.string)
        elif message.string:
            message.string = to_traditional(message.string, converter, overrides)
    return catalog


def write_if_changed(catalog: Any, target: Path) -> bool:
    """Write ``catalog`` as ``target`` unless the file already says the same: Sphinx then rebuilds only the
    pages whose translation changed."""
    from babel.messages.pofile import write_po

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as f:
        write_po(f, catalog, width=0)
    if target.is_file() and target.read_bytes() == tmp.read_bytes():
        tmp.unlink()
        return False
    tmp.replace(target)
    return True


def read_catalog(path: Path) -> Any:
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        return read_po(f, locale=TRANSLATED)


def theme_strings(ours: Path) -> Any:
    """The strings of pydata-sphinx-theme (which ships them in Simplified Chinese only, as "zh"), with the course's
    own sphinx.po of zh_CN over them: the zh_TW edition gets them all converted."""
    import pydata_sphinx_theme
    from babel.messages.catalog import Catalog

    theme = Path(pydata_sphinx_theme.__file__).parent / "locale" / "zh" / "LC_MESSAGES" / "sphinx.po"
    merged = read_catalog(theme) if theme.is_file() else Catalog(locale=TRANSLATED)
    if ours.is_file():
        for message in read_catalog(ours):
            if message.id and message.string:
                merged[message.id] = message
    return merged


def prepare_catalogs(source: Path, languages: list[str]) -> list[Path]:
    """The catalogs the translated editions are built with, in _build/locales (step 3): zh_CN's as written, and
    zh_TW's converted from them, each page's glue roles naming the page (with_page_glue). Returns those that
    changed."""
    import opencc

    converter = opencc.OpenCC(OPENCC_CONFIG)
    overrides = read_overrides(locales(source) / OVERRIDES)
    translated = locales(source) / TRANSLATED / "LC_MESSAGES"
    catalogs = {po.relative_to(translated): with_page_glue(read_catalog(po), po.relative_to(translated)
                                                           .with_suffix("").as_posix())
                for po in sorted(translated.rglob("*.po"))}
    built = source / "_build" / "locales"
    changed = []
    if TRANSLATED in languages:
        changed += [built / TRANSLATED / "LC_MESSAGES" / name for name, catalog in catalogs.items()
                    if write_if_changed(catalog, built / TRANSLATED / "LC_MESSAGES" / name)]
    if CONVERTED in languages:  # after zh_CN is written: the conversion changes the catalogs in place
        catalogs[Path("sphinx.po")] = theme_strings(translated / "sphinx.po")
        changed += [built / CONVERTED / "LC_MESSAGES" / name for name, catalog in catalogs.items()
                    if write_if_changed(convert_catalog(catalog, converter, overrides),
                                        built / CONVERTED / "LC_MESSAGES" / name)]
    return changed


# ---- the site ---------------------------------------------------------------------------------------
SHARED_FOLDERS = ("_static", "_images", "_sources")  # theme and extension files, plots, downloadable sources
NOTEBOOKS = ("_sources", ".ipynb")  # the chapters' downloadable notebooks: the English ones in every edition
# Files of those folders that belong to one edition even where their bytes happen to be the English one's: the
# search's language and index, the page options, and the course font's subset with the stylesheet that names it.
OWN_FILES = {"documentation_options.js", "translations.js", "language_data.js", "searchindex.js", "course-cjk.css",
             "course-cjk.woff"}
REFERENCE = re.compile(r'((?:src|href)=")((?:\.\./)*)((?:' + "|".join(SHARED_FOLDERS) + r')/[^"?#]*)')


def site(source: Path) -> Path:
    return source / "_build" / "html"


def shared_files(edition_site: Path, english_site: Path) -> set[str]:
    """The files of an edition's build that the English edition holds byte for byte, in the shared folders, and
    its downloadable notebooks: the site keeps one copy of each (the theme's scripts, MathJax, the plots, the
    notebooks), the English one's. A chapter's notebook is its English source, executed once for every edition;
    an edition's copy differs only in what its build leaves behind (new random cell ids, myst-nb's glue records,
    streams merged another way)."""
    import filecmp

    shared = set()
    for folder in SHARED_FOLDERS:
        for path in sorted((edition_site / folder).rglob("*")):
            name = path.relative_to(edition_site).as_posix()
            twin = english_site / name
            if (path.is_file() and path.name not in OWN_FILES and twin.is_file()
                    and (filecmp.cmp(path, twin, shallow=False) or (folder, path.suffix) == NOTEBOOKS)):
                shared.add(name)
    return shared


def point_at_english(html: str, shared: set[str]) -> str:
    """A page of an edition one folder below the English site, with its links to ``shared`` files made to lead
    to the English edition's copies."""
    return REFERENCE.sub(lambda m: m[1] + m[2] + "../" + m[3] if m[3] in shared else m[0], html)


def publish_edition(built: Path, english_site: Path, target: Path) -> int:
    """Copy an edition's build into the site at ``target``, without the files it shares with the English
    edition (its pages lead to those instead); returns how many it shares."""
    shared = shared_files(built, english_site)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(built, target, ignore=lambda folder, names: [
        n for n in names if n in (".buildinfo", ".doctrees")
        or (Path(folder) / n).relative_to(built).as_posix() in shared])
    for page in target.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        page.write_text(point_at_english(text, shared), encoding="utf-8")
    return len(shared)


def build_html(source: Path, languages: list[str]) -> None:
    """Steps 1-4: every edition of ``languages`` (English always first: it fills the cache and the shared assets)."""
    languages = [SOURCE.language] + [lang for lang in languages if lang != SOURCE.language]
    from course_editions import edition as edition_of

    for lang in languages[1:]:  # the English build must see only its own pages (fonts, demos)
        shutil.rmtree(site(source) / edition_of(lang).folder, ignore_errors=True)
    timings: dict[str, float] = {}
    sphinx_in_child(source, SOURCE.language, "html", timings)
    start = time.perf_counter()
    sphinx_in_child(source, SOURCE.language, GETTEXT, timings)
    extract_course_strings(source, templates(source) / f"{COURSE_DOMAIN}.pot")
    prepare_catalogs(source, languages)
    for lang in languages[1:]:
        sphinx_in_child(source, lang, "html", timings)
        publish_edition(build_dir(source, lang) / "html", site(source), site(source) / edition_of(lang).folder)
    timings["the other steps, in all"] = round(time.perf_counter() - start, 1)
    timings_file(source).parent.mkdir(parents=True, exist_ok=True)
    timings_file(source).write_text(json.dumps(timings, indent=1) + "\n", encoding="utf-8")


# ---- the translators' step -------------------------------------------------------------------------
# A glued phrase: a text that a chapter computes from its results and glues into its prose, made of lower-case
# words only ("above zero", "does not narrow"); numbers, names and sentences are not phrases to translate.
GLUED_PHRASE = re.compile(r"[a-z][a-z ,;'-]*")


def glued_phrases(source: Path) -> dict[str, str]:
    """The glued phrases of the English build's executed chapters (myst-nb's <page>.glue.json): phrase -> where
    it is glued, "page: key"."""
    import ast

    phrases: dict[str, str] = {}
    executed = build_dir(source, SOURCE.language) / "jupyter_execute"
    for path in sorted(executed.rglob("*.glue.json")):
        page = path.relative_to(executed).as_posix().removesuffix(".glue.json")
        for key, output in json.loads(path.read_text(encoding="utf-8")).items():
            try:
                value = ast.literal_eval(output.get("data", {}).get("text/plain", ""))
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, str) and GLUED_PHRASE.fullmatch(value):
                phrases.setdefault(value, f"{page}: {key}")
    return phrases


def extract_course_strings(source: Path, pot: Path) -> int:
    """The site's title, the site extensions' own strings (``N_("...")`` in book/_ext/*.py, ``tr("...")`` in
    its scripts) and the chapters' glued phrases (glued_phrases) as ``pot``; returns how many."""
    import yaml
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract
    from babel.messages.pofile import write_po

    title = yaml.safe_load((source / "_config.yml").read_text(encoding="utf-8"))["title"]
    catalog = Catalog(project=title, charset="utf-8")
    catalog.add(title, auto_comments=["the site's title (_config.yml), in its header and every page's <title>"])
    ext = source / "book" / "_ext"
    for path in sorted([*ext.glob("*.py"), *(ext / "static").glob("*.js")]):
        method, keywords = ("python", {"N_": None}) if path.suffix == ".py" else ("javascript", {"tr": None})
        with path.open("rb") as f:
            for _line, message, _comments, _context in extract(method, f, keywords=keywords):
                catalog.add(message)
    for phrase, where in glued_phrases(source).items():
        catalog.add(phrase, auto_comments=[f"glued into the prose from the chapter's results ({where})"])
    pot.parent.mkdir(parents=True, exist_ok=True)
    with pot.open("wb") as f:
        write_po(f, catalog, width=0, omit_header=False)
    return len(catalog)


def update_catalogs(source: Path) -> None:
    """The templates of the current English text, and zh_CN's catalogs updated to them (sphinx-intl)."""
    sphinx_in_child(source, SOURCE.language, "html")
    sphinx_in_child(source, SOURCE.language, GETTEXT)
    extract_course_strings(source, templates(source) / f"{COURSE_DOMAIN}.pot")
    command = [str(Path(sys.executable).parent / "sphinx-intl"), "update", "-p", str(templates(source)),
               "-d", str(locales(source)), "-l", TRANSLATED, "-w", "0"]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=source, check=True)


# ---- the catalog check ------------------------------------------------------------------------------
def catalog_problems(pot_dir: Path, po_dir: Path, domains: list[str] | None = None) -> dict[str, list[str]]:
    """What a translator still has to do: for each template (``pot_dir/<domain>.pot``, all or those of
    ``domains``), the messages of the current English text that its catalog (``po_dir/<domain>.po``) lacks,
    leaves untranslated, or marks fuzzy (an English message that changed since it was translated)."""
    from babel.messages.pofile import read_po

    problems: dict[str, list[str]] = {}
    for pot in sorted(pot_dir.rglob("*.pot")):
        domain = pot.relative_to(pot_dir).with_suffix("").as_posix()
        if domains is not None and domain not in domains:
            continue
        po = po_dir / f"{domain}.po"
        catalog = read_catalog(po) if po.is_file() else {}
        with pot.open("rb") as f:
            wanted = [m.id for m in read_po(f) if m.id]
        missing = []
        for msgid in wanted:
            message = catalog.get(msgid) if po.is_file() else None
            if message is None:
                missing.append(f"missing: {msgid}")
            elif message.fuzzy:
                missing.append(f"fuzzy: {msgid}")
            elif not (all(message.string) if isinstance(message.string, tuple) else message.string):
                missing.append(f"untranslated: {msgid}")
        if missing:
            problems[domain] = missing
    return problems


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("job", choices=["html", "catalogs", "sphinx"])
    parser.add_argument("--source", type=Path, default=Path.cwd(), help="the folder of _config.yml")
    parser.add_argument("--editions", nargs="+", default=[e.language for e in EDITIONS],
                        choices=[e.language for e in EDITIONS])
    parser.add_argument("--edition", default=SOURCE.language, help=argparse.SUPPRESS)  # job sphinx
    parser.add_argument("--builder", default="html", help=argparse.SUPPRESS)  # job sphinx
    args = parser.parse_args(argv)
    source = args.source.resolve()
    if args.job == "sphinx":
        sys.exit(run_sphinx(source, edition(args.edition).language, args.builder))
    elif args.job == "html":
        build_html(source, args.editions)
    else:
        update_catalogs(source)


if __name__ == "__main__":
    main()
