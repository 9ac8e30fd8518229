"""The live demos of the website (book/_ext/course_demos.py, static/course_demos.js) in headless Chromium.

A small page with the three demos is served from 127.0.0.1 with the assets the book build puts into the site
(the course model as ONNX, its vocabulary, onnxruntime-web's WebAssembly build). Each demo gets a typed
sentence and its result is checked against bertlab's, with no request leaving the page's origin:

* the page's tokenizer gives exactly the course tokenizer's ids on 1,000 held-out People's Daily sentences;
* fill-mask: the top 5 tokens and their probabilities, as bertlab.fill_mask gives them (1e-4);
* masking: the same positions, replacements and labels as bertlab.masking fed with the page's random draws;
* attention: every layer's and head's map, as bertlab computes them (1e-4);
* on the built chapter page itself (book/masking.html), a reader's click on Run gives bertlab's top 5 in the
  table;
* the page records when the first fill-mask result came (bench/site.py times it against its budget on the
  chapter page); WebAssembly off gives a clear message;
* every Chinese character the demos show is drawn in the course font (a reader may have no Chinese font).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from course_files import site_extension
from test_site import ROOT, base_url, browser, cjk_font_problems, open_page, serve, site  # noqa: F401  (fixtures)

from bertlab.shipped import course_model_dir
from bertlab.tokenizer import load_tokenizer


def course_demos():
    """book/_ext/course_demos.py (the site's demo extension), as a module."""
    return site_extension("course_demos")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    """A page with the three demos and everything they load, served on 127.0.0.1."""
    demos = course_demos()
    folder = tmp_path_factory.mktemp("demo-site")
    demos.write_demo_assets(folder / "_static", ROOT / "_build" / ".onnx_cache")
    boxes = "\n".join(demos.demo_markup(name, text) for name, text in demos.DEMOS.items())
    (folder / "index.html").write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>demos</title>'
        '<link rel="stylesheet" href="_static/course_demos.css">'
        '<link rel="stylesheet" href="_static/course_demos_font.css">'
        + "".join(f'<script src="_static/{name}"></script>' for name in demos.SCRIPTS) + '</head>'
        f"<body><h1>Demos</h1>{boxes}</body></html>", encoding="utf-8")
    with serve(folder) as url:
        yield url + "index.html"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(course_model_dir())


def open_demos(browser, url):  # noqa: F811
    page, problems = open_page(browser, url)
    page.evaluate("() => window.courseDemos.ready")
    return page, problems


def run_demo(page, name: str, text: str, **controls) -> dict:
    """Type ``text`` into demo ``name`` (and set its seed / whole-word box), run it, return its result."""
    box = page.locator(f'.course-demo[data-demo="{name}"]')
    box.locator(".course-demo-input").fill(text)
    if "seed" in controls:
        box.locator(".course-demo-seed").fill(str(controls["seed"]))
    if "whole_word" in controls:
        box.locator(".course-demo-whole-word").set_checked(controls["whole_word"])
    page.evaluate(f"() => document.querySelector('.course-demo[data-demo=\"{name}\"]').courseDemoRun()")
    return page.evaluate(f"() => window.courseDemos.results[{json.dumps(name)}]")


def test_page_tokenizer_matches_the_course_tokenizer(browser, demo_url, tokenizer):  # noqa: F811
    from bertlab.corpora import tagged_sentences

    texts = [s.text for s in tagged_sentences("test")[:1000]]
    assert len(texts) == 1000
    # and the corners of BERT's rules: special tokens (和 "and"), accents, full-width forms (年 "year"), control
    # and zero-width characters, a word over 100 characters, ASCII symbols, CJK compatibility ideographs
    # (豈 更: "how", "again"), characters beyond the vocabulary (𠀀, an emoji), whitespace only
    texts += ["台湾大[MASK]", "[MASK][MASK]和[SEP]", "Café NAÏVE résumé", "ＢＥＲＴ　１９９８年",
              "a\u0000b\u200bc\ufffd", "tab\tnew\nline", "emoji 😀 and 𠀀", "x" * 150, "$100+<b>", "豈 更",
              "[mask] [UNK]", "", "  "]
    page, problems = open_demos(browser, demo_url)
    got = page.evaluate("async (texts) => { const t = await window.courseDemos.loadTokenizer();"
                        " return texts.map(s => t.encode(s)); }", texts)
    page.close()
    expected = tokenizer(texts)["input_ids"]
    wrong = [(t, g, e) for t, g, e in zip(texts, got, expected, strict=True) if g != e]
    assert not wrong, f"{len(wrong)} of {len(texts)} differ, first: {wrong[0]}"
    assert not problems, problems


def test_fill_mask_demo_matches_bertlab(browser, demo_url, tokenizer):  # noqa: F811
    from bertlab.fill_mask import fill_mask, load_fill_mask_model

    model, _ = load_fill_mask_model(course_model_dir())
    page, problems = open_demos(browser, demo_url)
    # "The children look forward to new cl[othes], good food, and playing to their hearts' con[tent]."
    text = "孩子们则盼着穿新[MASK]，吃好的，玩个痛[MASK]。"
    result = run_demo(page, "fill-mask", text)
    # Click a character to hide it: 子, the second of 孩子 ("child").
    box = page.locator('.course-demo[data-demo="fill-mask"]')
    box.locator("button.course-demo-char", has_text="子").first.click()
    page.wait_for_function("() => window.courseDemos.results['fill-mask'].text.startsWith('孩[MASK]')")
    clicked = page.evaluate("() => window.courseDemos.results['fill-mask']")
    shown = box.locator(".course-demo-table tbody tr").count()
    page.close()
    assert not problems, problems
    assert clicked["text"] == text.replace("子", "[MASK]", 1)
    assert shown == 5 * 3  # five rows for each of the three [MASK]
    for case in (result, clicked):
        expected = fill_mask(model, tokenizer, case["text"], top_k=5)
        assert len(case["predictions"]) == len(expected)
        for got, want in zip(case["predictions"], expected, strict=True):
            assert [c["token"] for c in got] == [t for t, _ in want]
            assert [c["p"] for c in got] == pytest.approx([p for _, p in want], abs=1e-4)


def test_fill_mask_on_the_chapter_page_answers_a_click(browser, base_url, tokenizer):  # noqa: F811
    """As a reader uses it: the demo of the built chapter, a typed sentence, a click on Run, the table. The page
    is _build/html's (the `site` fixture builds the book when it is missing; `tasks.py test` builds it first)."""
    from bertlab.fill_mask import fill_mask, load_fill_mask_model

    model, _ = load_fill_mask_model(course_model_dir())
    page, problems = open_demos(browser, base_url + "book/masking.html")
    box = page.locator('.course-demo[data-demo="fill-mask"]')
    text = "今天的天[MASK]很好。"  # the weather (天[气]) is fine today
    box.locator(".course-demo-input").fill(text)
    box.locator("button.course-demo-run").click()
    page.wait_for_function("(t) => (window.courseDemos.results['fill-mask'] || {}).text === t", arg=text)
    cells = [row.locator("td").all_inner_texts() for row in box.locator(".course-demo-table tbody tr").all()]
    page.close()
    assert not problems, problems
    (expected,) = fill_mask(model, tokenizer, text, top_k=5)
    assert [c[0] for c in cells] == [token.removeprefix("##") for token, _ in expected]
    assert [float(c[1]) for c in cells] == pytest.approx([p for _, p in expected], abs=1e-3)  # shown to 3 places


def bertlab_masking(result: dict, tokenizer, monkeypatch) -> tuple[list[int], list[int]]:
    """bertlab.masking on the page's sentence, drawing the page's random numbers instead of torch's."""
    from bertlab import masking

    draws = result["draws"]
    uniforms = iter([torch.tensor([draws["keys"]], dtype=torch.float32), torch.tensor([draws["u"]])])
    monkeypatch.setattr(masking, "_uniform", lambda shape, generator, device: next(uniforms).reshape(shape))
    monkeypatch.setattr(masking.torch, "randint", lambda low, high, shape, **kw: torch.tensor([draws["r"]]))
    special = dict(vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
                   special_token_ids=tokenizer.all_special_ids, mlm_probability=result["p"])
    ids = torch.tensor([result["ids"]])
    if result["wholeWord"]:
        masked, labels = masking.mask_whole_words(ids, torch.tensor([result["wordIds"]]), **special)
    else:
        masked, labels = masking.mask_tokens(ids, **special)
    monkeypatch.undo()
    return masked[0].tolist(), labels[0].tolist()


def test_masking_demo_matches_bertlab(browser, demo_url, tokenizer, monkeypatch):  # noqa: F811
    page, problems = open_demos(browser, demo_url)
    # "The weather is fine today; let's go for a walk in the park together. The children look forward to new
    # clothes, good food, and playing to their hearts' content." (words separated by spaces for whole words)
    text = "今天 天气 很 好 ， 我们 一起 去 公园 散步 。 孩子们 盼着 穿 新衣 ， 吃 好 的 ， 玩 个 痛快 。"
    results = [run_demo(page, "masking", text, seed=seed, whole_word=whole)
               for seed in range(6) for whole in (False, True)]
    page.close()
    assert not problems, problems
    kinds = set()
    for result in results:
        assert result["ids"] == tokenizer(text)["input_ids"]
        masked, labels = bertlab_masking(result, tokenizer, monkeypatch)
        assert result["masked"] == masked and result["labels"] == labels, result["seed"]
        kinds.update(result["kinds"])
    assert kinds == {"not chosen", "[MASK]", "random token", "unchanged"}, kinds  # every outcome was seen
    whole = [r for r in results if r["wholeWord"]]
    for r in whole:  # whole words: a word's characters are chosen together
        chosen = {w for w, label in zip(r["wordIds"], r["labels"], strict=True) if label != -100}
        assert all(r["labels"][t] != -100 for t, w in enumerate(r["wordIds"]) if w in chosen)


def test_attention_demo_matches_bertlab(browser, demo_url, tokenizer):  # noqa: F811
    from bertlab.onnx_export import MaskedLMWithAttentions, load_masked_lm

    page, problems = open_demos(browser, demo_url)
    text = "这本书很好看，推荐！"  # "This book is a very good read, recommended!"
    result = run_demo(page, "attention", text)
    maps = page.locator('.course-demo[data-demo="attention"] canvas').count()
    # The tokens label both axes: the strips left of and above the map hold drawn pixels, the corner none.
    inked = page.evaluate("""() => {
      const c = document.querySelector('.course-demo[data-demo="attention"] canvas'), m = 30, ctx = c.getContext('2d');
      const ink = (x, y, w, h) => ctx.getImageData(x, y, w, h).data.filter((v, k) => k % 4 === 3 && v > 0).length;
      return {left: ink(0, m, m, c.height - m), top: ink(m, 0, c.width - m, m), corner: ink(0, 0, m - 4, m - 4)};
    }""")
    page.close()
    assert inked["left"] > 50 and inked["top"] > 50 and inked["corner"] == 0, inked
    assert not problems, problems
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        _, expected = MaskedLMWithAttentions(load_masked_lm())(ids)
    assert result["ids"] == ids[0].tolist()
    assert (result["L"], result["N"], result["T"]) == tuple(expected.shape[:3]) and maps == result["L"] * result["N"]
    got = torch.tensor(result["attentions"]).reshape(expected.shape)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_demo_tokens_are_drawn_in_the_course_font(browser, demo_url):  # noqa: F811
    page, problems = open_demos(browser, demo_url)
    # Predictions can be any token of the vocabulary; 台湾大学: "National Taiwan University"
    run_demo(page, "fill-mask", "[MASK][MASK][MASK][MASK]台湾大学")
    run_demo(page, "masking", "今天 天气 很 好 ， 我们 一起 去 公园 散步 。", seed=1, whole_word=True)
    fonts = cjk_font_problems(page)
    page.close()
    assert not problems, problems
    assert not fonts, fonts


def test_the_first_fill_mask_result_is_recorded(browser, demo_url):  # noqa: F811
    """bench/site.py times it on the chapter page; here only that the page records it, with no problem."""
    page, problems = open_page(browser, demo_url)
    page.wait_for_function("() => window.courseDemos.results.firstFillMaskMs !== undefined", timeout=30000)
    ms = page.evaluate("() => window.courseDemos.results.firstFillMaskMs")
    page.close()
    assert not problems, problems
    assert ms > 0


def test_without_webassembly_the_demos_say_so(browser, demo_url):  # noqa: F811
    page = browser.new_page()
    page.add_init_script("delete window.WebAssembly;")
    page.goto(demo_url)
    page.evaluate("() => window.courseDemos.ready")
    messages = page.locator(".course-demo-status").all_inner_texts()
    page.close()
    assert sum("needs WebAssembly" in m or "runs the course model with WebAssembly" in m for m in messages) == 2, \
        messages  # fill-mask and attention; the masking playground needs no model
    assert "WebAssembly" not in messages[1]


def test_the_built_site_has_the_demos_within_budget():
    built = ROOT / "_build" / "html"
    if not (built / "index.html").exists():
        pytest.skip("the site is not built (python3 tasks.py book)")
    demos = course_demos()
    static = built / "_static"
    size = sum(p.stat().st_size for p in demos.added_files(static))
    print(f"demos + fonts added to the site: {size / 1e6:.1f} MB")
    assert size <= demos.SIZE_BUDGET_MB * 1e6
    pages = {name: (built / "book" / f"{name}.html").read_text(encoding="utf-8")
             for name in ("bert_encoder", "masking")}
    assert 'data-demo="attention"' in pages["bert_encoder"]
    assert 'data-demo="fill-mask"' in pages["masking"] and 'data-demo="masking"' in pages["masking"]
    assert Path(static / demos.STATIC / demos.MODEL_FILE).stat().st_size > 1_000_000
