/* Live demos of the course model, in the reader's browser (book/_ext/course_demos.py puts them in the pages).
 *
 * Everything comes from the site itself: the course model as ONNX (python -m bertlab.onnx_export), its
 * vocabulary, and onnxruntime-web's WebAssembly build, all in _static/course-demos/. No request leaves the page.
 *
 *   fill-mask  type a sentence with [MASK] (or click a character) -> the top 5 tokens for each [MASK]
 *   masking    BERT's masking rule (15%, 80/10/10, or whole words) on the typed sentence, with a seed
 *   attention  the attention maps of every layer and head for the typed sentence
 *
 * The course tokenizer is in course_tokenizer.js, which the pages load first.
 * window.courseDemos exposes the tokenizer and the last result of each demo (the browser test reads them).
 *
 * Every word the demos show goes through tr("..."): the page holds the translations of the edition it belongs to
 * (a JSON script "course-strings", from course.po; book/_ext/course_editions.py). Every edition of the site
 * loads the one copy of the model and runtime, in the English edition's _static/ (the page names that folder in
 * <meta name="course-demo-assets">).
 */
(function () {
  "use strict";

  const ASSETS = document.querySelector('meta[name="course-demo-assets"]');
  const BASE = ASSETS ? new URL(ASSETS.content, document.baseURI).href
    : new URL("course-demos/", document.currentScript.src).href;
  const {Tokenizer, WHITESPACE} = window.CourseTokenizer; // course_tokenizer.js, loaded first

  // ---- the page's language ------------------------------------------------------------------------------------
  const STRINGS = (() => {
    const node = document.getElementById("course-strings");
    try {
      return node ? JSON.parse(node.textContent) : {};
    } catch (err) {
      return {};
    }
  })();

  /** A message in the page's language (English where it has no translation), its {name}s filled in from vars. */
  function tr(message, vars = {}) {
    return (STRINGS[message] || message).replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  }

  const NO_WASM = tr("This live demo runs the course model with WebAssembly, which is turned off or not " +
    "supported in this browser. The outputs printed above come from the same model.");

  // ---- loading the tokenizer and the model (once per page) ----------------------------------------------------
  let tokenizerPromise = null, sessionPromise = null;

  function loadTokenizer() {
    tokenizerPromise ??= fetch(BASE + "vocab.txt").then((r) => {
      if (!r.ok) throw new Error(`vocab.txt: HTTP ${r.status}`);
      return r.text();
    }).then((text) => new Tokenizer(text));
    return tokenizerPromise;
  }

  function hasWasm() {
    return typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function";
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.appendChild(script);
    });
  }

  function loadModel() {
    sessionPromise ??= loadScript(BASE + "ort.wasm.min.js").then(() => {
      window.ort.env.wasm.wasmPaths = BASE; // the .mjs loader and the .wasm next to it, on this site
      window.ort.env.wasm.numThreads = 1; // no SharedArrayBuffer needed (a static site is not cross-origin isolated)
      return window.ort.InferenceSession.create(BASE + "course-model.onnx", {executionProviders: ["wasm"]});
    });
    return sessionPromise;
  }

  /** The model on one sentence: logits (T x V) and attention probabilities (L x N x T x T), flat. */
  async function runModel(ids) {
    const session = await loadModel();
    const input = new window.ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]);
    const out = await session.run({input_ids: input});
    const [, T, V] = out.logits.dims;
    const [L, N] = out.attentions.dims;
    return {logits: out.logits.data, attentions: out.attentions.data, T, V, L, N};
  }

  // ---- small helpers for the pages ----------------------------------------------------------------------------
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    node.append(...children);
    return node;
  }

  function shown(token) {
    return token.startsWith("##") ? token.slice(2) : token;
  }

  function status(box, text, kind = "") {
    box.querySelector(".course-demo-status").textContent = text;
    box.dataset.state = kind;
  }

  const results = {}; // the last result of each demo, for the browser test

  // ---- fill-mask ----------------------------------------------------------------------------------------------
  function softmaxTop(logits, offset, V, k) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[offset + v]);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(logits[offset + v] - max);
    const order = Array.from({length: V}, (_, v) => v).sort((a, b) => logits[offset + b] - logits[offset + a]);
    return order.slice(0, k).map((v) => ({id: v, p: Math.exp(logits[offset + v] - max) / sum}));
  }

  async function fillMask(box, text) {
    const tok = await loadTokenizer();
    const ids = tok.encode(text);
    const positions = ids.flatMap((id, t) => (id === tok.mask ? [t] : []));
    const out = box.querySelector(".course-demo-output");
    out.replaceChildren();
    if (!positions.length) {
      status(box, tr("Put [MASK] in the sentence, or click a character above to hide it."), "idle");
      return;
    }
    status(box, tr("running the course model …"), "busy");
    const {logits, V} = await runModel(ids);
    const predictions = positions.map((t) => softmaxTop(logits, t * V, V, 5)
      .map(({id, p}) => ({token: tok.tokens[id], p})));
    predictions.forEach((candidates, n) => {
      const rows = candidates.map(({token, p}) => el("tr", {},
        el("td", {class: "course-demo-token"}, shown(token)), el("td", {}, p.toFixed(3)),
        el("td", {}, el("span", {class: "course-demo-bar", style: `width:${(10 * p).toFixed(2)}em`}))));
      out.append(el("table", {class: "course-demo-table"},
        el("caption", {}, tr("[MASK] {n} of {total}: the 5 most probable tokens",
          {n: n + 1, total: positions.length})),
        el("thead", {}, el("tr", {}, el("th", {}, tr("token")), el("th", {}, tr("probability")),
          el("th", {}, ""))),
        el("tbody", {}, ...rows)));
    });
    results["fill-mask"] = {text, ids, predictions};
    results.firstFillMaskMs ??= performance.now();
    status(box, tr("done: {masks} [MASK], {tokens} tokens", {masks: positions.length, tokens: ids.length}), "done");
  }

  function characterButtons(box, input, rerun) {
    const row = box.querySelector(".course-demo-chars");
    row.replaceChildren();
    const parts = input.value.split(/(\[MASK\])/);
    let offset = 0;
    for (const part of parts) {
      if (part === "[MASK]") row.append(el("span", {class: "course-demo-char masked"}, "[MASK]"));
      else {
        let i = 0;
        for (const ch of part) {
          const start = offset + i;
          i += ch.length;
          if (WHITESPACE.test(ch)) continue;
          row.append(el("button", {type: "button", class: "course-demo-char", title: tr("hide this character"),
            onclick: () => {
              input.value = input.value.slice(0, start) + "[MASK]" + input.value.slice(start + ch.length);
              rerun();
            }}, ch));
        }
      }
      offset += part.length;
    }
  }

  // ---- masking playground: bertlab.masking's rule, with a seeded generator of its own --------------------------
  // What happened to a token (the results keep the English names, which the browser test compares with bertlab's).
  const KINDS = {"not chosen": tr("not chosen"), "[MASK]": "[MASK]", "random token": tr("random token"),
    "unchanged": tr("unchanged")};

  function mulberry32(seed) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function roundHalfEven(x) {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function numToPredict(n, p) {
    return n > 0 ? Math.max(1, roundHalfEven(n * p)) : 0;
  }

  /** mask_tokens / mask_whole_words of bertlab.masking for one sequence; draws are 24-bit, exact in float32. */
  function applyMasking(ids, wordIds, tok, {seed, p, wholeWord}) {
    const random = mulberry32(seed);
    const uniform = () => Math.floor(random() * 16777216) / 16777216;
    const T = ids.length, V = tok.tokens.length;
    const special = new Set([tok.pad, tok.unk, tok.cls, tok.sep, tok.mask]);
    const candidate = ids.map((id) => !special.has(id));
    const keys = ids.map(() => uniform());
    let chosen;
    if (!wholeWord) {
      const order = ids.map((_, t) => t).filter((t) => candidate[t]).sort((a, b) => keys[a] - keys[b] || a - b);
      chosen = new Set(order.slice(0, numToPredict(order.length, p)));
    } else {
      const groups = new Map(); // word -> positions, in order of first appearance
      wordIds.forEach((w, t) => {
        const key = w >= 0 ? `w${w}` : `t${t}`;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(t);
      });
      const words = [...groups.values()].filter((pos) => pos.every((t) => candidate[t]))
        .sort((a, b) => keys[a[0]] - keys[b[0]]);
      const budget = numToPredict(words.reduce((s, pos) => s + pos.length, 0), p);
      let picked = [];
      for (const pos of words) {
        if (picked.length >= budget) break;
        if (picked.length + pos.length <= budget) picked = picked.concat(pos);
      }
      if (!picked.length && words.length) picked = words[0];
      chosen = new Set(picked);
    }
    const u = ids.map(() => uniform());
    const allowed = [];
    for (let v = 0; v < V; v++) if (!special.has(v)) allowed.push(v);
    const r = ids.map(() => Math.floor(random() * (allowed.length - 1)));
    const maskCut = Math.fround(0.8), randomCut = Math.fround(0.8 + 0.1); // compared in float32, as in torch
    const masked = ids.slice(), labels = ids.map(() => -100), kinds = ids.map(() => "not chosen");
    ids.forEach((id, t) => {
      if (!chosen.has(t)) return;
      labels[t] = id;
      if (u[t] < maskCut) {
        masked[t] = tok.mask;
        kinds[t] = "[MASK]";
      } else if (u[t] < randomCut) {
        let own = 0; // the index of the original among the allowed ids (searchsorted)
        while (own < allowed.length && allowed[own] < id) own++;
        masked[t] = allowed[r[t] + (r[t] >= own ? 1 : 0)];
        kinds[t] = "random token";
      } else kinds[t] = "unchanged";
    });
    return {masked, labels, kinds, draws: {keys, u, r}};
  }

  async function masking(box, text) {
    const tok = await loadTokenizer();
    const seed = Number(box.querySelector(".course-demo-seed").value) || 0;
    const wholeWord = box.querySelector(".course-demo-whole-word").checked;
    const p = 0.15;
    const ids = tok.encode(text);
    const wordIds = tok.wordIds(text);
    const result = applyMasking(ids, wordIds, tok, {seed, p, wholeWord});
    const rows = ids.map((id, t) => el("tr", {class: `kind-${result.kinds[t].replace(/\W+/g, "")}`},
      el("td", {}, String(t)), el("td", {}, tok.tokens[id]), el("td", {}, tok.tokens[result.masked[t]]),
      el("td", {}, KINDS[result.kinds[t]]),
      el("td", {}, result.labels[t] === -100 ? "-100" : `${tok.tokens[result.labels[t]]} (${result.labels[t]})`),
      el("td", {}, wholeWord ? String(wordIds[t]) : "")));
    const out = box.querySelector(".course-demo-output");
    out.replaceChildren(
      el("p", {class: "course-demo-sentence"}, tr("the model sees: "),
        el("span", {}, result.masked.slice(1, -1).map((id) => shown(tok.tokens[id])).join(""))),
      el("table", {class: "course-demo-table"},
        el("thead", {}, el("tr", {}, ...[tr("position"), tr("token"), tr("model input"), tr("what happened"),
          tr("label"), tr("word")].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows)));
    results.masking = {text, seed, p, wholeWord, ids, wordIds, ...result};
    const n = result.labels.filter((l) => l !== -100).length;
    const chosen = {n, total: ids.length - 2, seed};
    status(box, wholeWord ? tr("{n} of {total} tokens chosen (seed {seed}, whole words)", chosen)
      : tr("{n} of {total} tokens chosen (seed {seed})", chosen), "done");
  }

  // ---- attention viewer ---------------------------------------------------------------------------------------
  const MAP_MARGIN = 30; // canvas pixels left of and above the map, for the tokens' labels

  /** [CLS] -> C, [SEP] -> S, [MASK] -> M: a special token's label fits one cell. */
  function axisLabel(token) {
    return /^\[[A-Z]+\]$/.test(token) ? token[1] : token;
  }

  /** Attention weights as a T x T map (rows: query, columns: key), the tokens along both axes. */
  function drawMap(canvas, data, offset, tokens) {
    const T = tokens.length, cell = (canvas.width - MAP_MARGIN) / T, ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < T; i++) {
      for (let j = 0; j < T; j++) {
        const w = data[offset + i * T + j];
        ctx.fillStyle = `rgba(31, 119, 180, ${w.toFixed(3)})`;
        ctx.fillRect(MAP_MARGIN + j * cell, MAP_MARGIN + i * cell, Math.ceil(cell), Math.ceil(cell));
      }
    }
    ctx.fillStyle = "#333";
    ctx.font = `${Math.max(7, Math.min(13, cell * 0.8))}px "Course CJK", sans-serif`;
    tokens.forEach((token, k) => {
      const middle = MAP_MARGIN + (k + 0.5) * cell;
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      ctx.fillText(axisLabel(token), MAP_MARGIN - 3, middle); // the query token of row k
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      ctx.fillText(axisLabel(token), middle, MAP_MARGIN - 3); // the key token of column k
    });
  }

  async function attention(box, text) {
    const tok = await loadTokenizer();
    const ids = tok.encode(text);
    status(box, tr("running the course model …"), "busy");
    const {attentions, T, L, N} = await runModel(ids);
    const tokens = ids.map((id) => shown(tok.tokens[id]));
    const grid = el("div", {class: "course-demo-grid", style: `grid-template-columns: repeat(${N}, 1fr)`});
    for (let l = 0; l < L; l++) {
      for (let h = 0; h < N; h++) {
        const offset = ((l * N) + h) * T * T;
        const canvas = el("canvas", {width: "230", height: "230", class: "course-demo-map",
          "aria-label": tr("attention of layer {layer}, head {head}", {layer: l + 1, head: h + 1})});
        drawMap(canvas, attentions, offset, tokens);
        const name = tr("layer {layer}, head {head}", {layer: l + 1, head: h + 1});
        const caption = el("figcaption", {}, name);
        canvas.addEventListener("mousemove", (e) => {
          const rect = canvas.getBoundingClientRect(), scale = canvas.width / rect.width;
          const at = (pixels) => Math.floor((pixels * scale - MAP_MARGIN) / ((canvas.width - MAP_MARGIN) / T));
          const i = at(e.clientY - rect.top), j = at(e.clientX - rect.left);
          if (i < 0 || j < 0 || i >= T || j >= T) return; // over the labels
          caption.textContent = `${name}: ${tokens[i]} → ${tokens[j]} ` +
            attentions[offset + i * T + j].toFixed(2);
        });
        grid.append(el("figure", {}, canvas, caption));
      }
    }
    box.querySelector(".course-demo-output").replaceChildren(
      el("p", {class: "course-demo-sentence"}, tr("tokens (rows: the query token attending; columns: the key " +
        "token attended to; darker = more weight; C = [CLS], S = [SEP]): "), el("span", {}, tokens.join(" "))), grid);
    results.attention = {text, ids, L, N, T, attentions: Array.from(attentions)};
    status(box, tr("{layers} layers × {heads} heads, {tokens} tokens", {layers: L, heads: N, tokens: T}), "done");
  }

  // ---- building the demos in the page -------------------------------------------------------------------------
  const DEMOS = {
    "fill-mask": {title: tr("Live: fill in the blank"), run: fillMask, chars: true,
      help: tr("Type a Chinese sentence with one or more [MASK], or click a character to hide it.")},
    masking: {title: tr("Live: BERT's masking rule"), run: masking, seed: true,
      help: tr("15% of the tokens are chosen; of those 80% become [MASK], 10% a random token, 10% stay. " +
        "For whole-word masking, separate the words with spaces (the page has no word segmenter).")},
    attention: {title: tr("Live: attention of the course model"), run: attention,
      help: tr("Every layer (rows) and head (columns) of the course model on your sentence.")},
  };

  function build(box) {
    const demo = DEMOS[box.dataset.demo];
    if (!demo) return;
    const input = el("input", {type: "text", class: "course-demo-input", value: box.dataset.text || "",
      maxlength: "200", "aria-label": tr("sentence")});
    const button = el("button", {type: "button", class: "course-demo-run"}, tr("Run"));
    const controls = el("div", {class: "course-demo-controls"}, input);
    if (demo.seed) {
      controls.append(el("label", {}, tr("seed") + " ", el("input", {type: "number", class: "course-demo-seed",
        value: "0", min: "0"})), el("label", {}, el("input", {type: "checkbox", class: "course-demo-whole-word"}),
      " " + tr("whole words")));
    }
    controls.append(button);
    box.replaceChildren(el("p", {class: "course-demo-title"}, demo.title), el("p", {class: "course-demo-help"},
      demo.help), controls, el("div", {class: "course-demo-chars"}), el("p", {class: "course-demo-status"}),
    el("div", {class: "course-demo-output"}));
    const rerun = () => {
      if (demo.chars) characterButtons(box, input, rerun);
      if (!hasWasm() && demo.run !== masking) {
        status(box, NO_WASM, "no-wasm");
        return Promise.resolve();
      }
      return demo.run(box, input.value).catch((err) => status(box, tr("The demo failed: {error}", {error: err.message}),
        "error"));
    };
    button.addEventListener("click", rerun);
    input.addEventListener("keydown", (e) => e.key === "Enter" && rerun());
    box.courseDemoRun = rerun;
    return rerun();
  }

  function start() {
    const boxes = [...document.querySelectorAll(".course-demo[data-demo]")];
    if (!boxes.length) return;
    window.courseDemos.ready = Promise.all(boxes.map(build));
  }

  window.courseDemos = {loadTokenizer, applyMasking, results, hasWasm, ready: Promise.resolve()};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
