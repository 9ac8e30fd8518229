/* The course tokenizer in the reader's browser: BERT's basic tokenizer, then WordPiece over vocab.txt.
 *
 * The same steps as the `tokenizers` pipeline of bertlab.tokenizer (BertNormalizer, BertPreTokenizer,
 * WordPiece), so that the live demos (course_demos.js) feed the model exactly the ids bertlab gives.
 * window.CourseTokenizer exposes the Tokenizer class, the special tokens and the whitespace rule.
 */
(function () {
  "use strict";

  const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const MAX_TOKENS = 512;

  const CONTROL = /\p{C}/u;
  const WHITESPACE = /\p{White_Space}/u;
  const PUNCTUATION = /[!-/:-@[-`{-~]|\p{P}/u; // ASCII punctuation (symbols such as $ + < included) and Unicode P*
  const SPECIAL_SPLIT = /(\[PAD\]|\[UNK\]|\[CLS\]|\[SEP\]|\[MASK\])/;
  const CJK_RANGES = [[0x4e00, 0x9fff], [0x3400, 0x4dbf], [0x20000, 0x2a6df], [0x2a700, 0x2b73f], [0x2b740, 0x2b81f],
    [0x2b920, 0x2ceaf], [0xf900, 0xfaff], [0x2f800, 0x2fa1f]];

  function isChinese(cp) {
    return CJK_RANGES.some(([lo, hi]) => cp >= lo && cp <= hi);
  }

  function normalize(text) {
    let out = "";
    for (const ch of text) {
      const cp = ch.codePointAt(0);
      if (ch === "\t" || ch === "\n" || ch === "\r") out += " ";
      else if (cp === 0 || cp === 0xfffd || CONTROL.test(ch)) continue;
      else if (WHITESPACE.test(ch)) out += " ";
      else out += isChinese(cp) ? " " + ch + " " : ch;
    }
    return out.normalize("NFD").replace(/\p{Mn}/gu, "").toLowerCase(); // strip accents, then lowercase
  }

  function preTokenize(text) {
    const words = [];
    let word = "";
    for (const ch of text) {
      if (WHITESPACE.test(ch) || PUNCTUATION.test(ch)) {
        if (word) words.push(word);
        word = "";
        if (!WHITESPACE.test(ch)) words.push(ch);
      } else word += ch;
    }
    if (word) words.push(word);
    return words;
  }

  class Tokenizer {
    constructor(vocabText) {
      this.tokens = vocabText.split("\n");
      if (this.tokens[this.tokens.length - 1] === "") this.tokens.pop();
      this.ids = new Map(this.tokens.map((t, i) => [t, i]));
      [this.pad, this.unk, this.cls, this.sep, this.mask] = SPECIALS.map((t) => this.ids.get(t));
    }

    wordPiece(word) {
      const chars = Array.from(word);
      if (chars.length > 100) return [this.unk];
      const pieces = [];
      for (let start = 0; start < chars.length;) {
        let end = chars.length, id;
        for (; end > start; end--) {
          id = this.ids.get((start > 0 ? "##" : "") + chars.slice(start, end).join(""));
          if (id !== undefined) break;
        }
        if (end === start) return [this.unk];
        pieces.push(id);
        start = end;
      }
      return pieces;
    }

    /** The ids of text without [CLS]/[SEP], as bertlab's tokenizer gives them (add_special_tokens=False). */
    encodePlain(text) {
      const ids = [];
      for (const part of text.split(SPECIAL_SPLIT)) {
        if (SPECIALS.includes(part)) ids.push(this.ids.get(part));
        else for (const word of preTokenize(normalize(part))) ids.push(...this.wordPiece(word));
      }
      return ids;
    }

    /** [CLS] text [SEP], truncated to the model's 512 positions. */
    encode(text) {
      return [this.cls, ...this.encodePlain(text).slice(0, MAX_TOKENS - 2), this.sep];
    }

    /** A word number per token of encode(text), words being the text's space-separated parts; -1 on [CLS]/[SEP]. */
    wordIds(text) {
      const ids = this.encode(text);
      const words = [-1];
      text.split(/[ \u3000]+/).filter(Boolean).forEach((part, w) => {
        for (let i = 0; i < this.encodePlain(part).length; i++) words.push(w);
      });
      if (words.length !== ids.length - 1) return ids.map((_, t) => (t === 0 || t === ids.length - 1 ? -1 : t));
      words.push(-1);
      return words;
    }
  }

  window.CourseTokenizer = {Tokenizer, SPECIALS, MAX_TOKENS, WHITESPACE};
})();
