// The llmbench report's grid, filters and case view. Everything shown comes from the JSON
// blocks of this page; model-written text is always escaped before it reaches the DOM.
(function () {
  "use strict";
  const $ = (selector) => document.querySelector(selector);
  const t0 = performance.now();
  const data = JSON.parse($("#llmbench-data").textContent);
  const columns = data.columns;
  const rows = data.rows; // [suite, tier, task, file, search text, case ids]
  const cells = data.cells; // per column, per row: outcome codes of its cases, or null
  const NAMES = data.outcomes; // code -> outcome name
  const STABILITY = data.stability; // per column, per row: [label, text, samples], or null
  const MARKS = data.marks; // label -> the mark of a cell not stable
  const CLASS = { ".": "p", F: "F", t: "t", n: "n", T: "T", E: "E", " ": "_" };
  const details = []; // per column, parsed on first use

  function esc(text) {
    return String(text == null ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  // A column's details: gzip+base64 JSON, unpacked by the browser's own decoder on first use.
  async function columnDetails(c) {
    if (!details[c]) {
      const binary = atob($("#llmbench-details-" + c).textContent);
      const bytes = new Uint8Array(binary.length);
      for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      details[c] = JSON.parse(await new Response(stream).text());
    }
    return details[c];
  }

  // ------------------------------------------------------------------ grid
  const rowHtml = new Array(rows.length);
  // A cell is one element painted with one stripe per case (a gradient with hard stops):
  // thousands of cells lay out and paint far faster than one element per case.
  const COLOUR = { ".": "var(--passed)", F: "var(--failed)", t: "var(--truncated)",
    n: "var(--no_answer)", T: "var(--timeout)", E: "var(--error)", " ": "var(--missing)" };
  function stripes(codes) {
    const n = codes.length, stops = [];
    for (let i = 0; i < n; i++) {
      const from = (100 * i) / n, to = (100 * (i + 1)) / n;
      stops.push((COLOUR[codes[i]] || "var(--missing)") + " " + from + "% calc(" + to + "% - 1px)",
        "transparent 0 " + to + "%");
    }
    return "linear-gradient(90deg," + stops.join(",") + ")";
  }
  function markOf(c, r) {
    const found = STABILITY[c][r];
    return found && MARKS[found[0]] ? MARKS[found[0]] : "";
  }
  function cellHtml(c, r) {
    const codes = cells[c][r];
    if (codes == null) return '<td class="x" title="not run"></td>';
    let passed = 0;
    for (const code of codes) if (code === ".") passed++;
    const found = STABILITY[c][r], mark = markOf(c, r);
    // The stripes are the first sample's; the label speaks for every sample.
    const title = columns[c].label + ": " + passed + "/" + codes.length + " passed" +
      (found ? (found[2] > 1 ? " (first sample); " : "; ") + found[1] : "");
    return '<td class="c' + (mark ? " u" : "") + '" data-c="' + c + '" data-r="' + r +
      '" data-o="' + esc(codes) + '" title="' + esc(title) + '"><b style="background:' +
      stripes(codes) + '"></b>' + (mark ? '<i class="mark">' + esc(mark) + "</i>" : "") +
      "</td>";
  }
  function renderRow(r) {
    if (rowHtml[r] === undefined) {
      const row = rows[r];
      let out = '<tr><td class="s">' + esc(row[0]) + '</td><td class="t">' + esc(row[1]) +
        '</td><td class="k" title="' + esc(row[3]) + '">' + esc(row[2]) + "</td>";
      for (let c = 0; c < columns.length; c++) out += cellHtml(c, r);
      rowHtml[r] = out + "</tr>";
    }
    return rowHtml[r];
  }
  function header() {
    let out = "<tr><th>suite</th><th>tier</th><th>task</th>";
    let cols = '<col class="s"><col class="t"><col class="k">';
    for (const col of columns) {
      out += '<th title="' + esc(col.label + ", run " + col.run) + '">' + esc(col.label) + "</th>";
      cols += '<col class="m">';
    }
    $("#grid thead").innerHTML = out + "</tr>";
    $("#grid").insertAdjacentHTML("afterbegin", "<colgroup>" + cols + "</colgroup>");
    $("#grid").style.width = 348 + 96 * columns.length + "px";
  }

  // ------------------------------------------------------------------ filters
  function options(select, values) {
    for (const value of values) {
      if (!value) continue;
      const option = document.createElement("option");
      option.value = option.textContent = value;
      select.appendChild(option);
    }
  }
  function unique(index) {
    const seen = [];
    for (const row of rows) if (seen.indexOf(row[index]) < 0) seen.push(row[index]);
    return seen;
  }
  function outcomeMatches(r, want) {
    if (!want) return true;
    let any = false, allPassed = null, disagree = false;
    for (let c = 0; c < columns.length; c++) {
      const codes = cells[c][r];
      if (codes == null) continue;
      const full = codes.split("").every((k) => k === ".");
      if (allPassed === null) allPassed = full; else if (allPassed !== full) disagree = true;
      if (want === "u" && markOf(c, r)) any = true;
      else if (want === "!." && !full) any = true;
      else if (want.length === 1 && want !== "~" && want !== "u" && codes.indexOf(want) >= 0) {
        any = true;
      }
    }
    return want === "~" ? disagree : any;
  }
  function applyFilters() {
    const start = performance.now();
    const suite = $("#f-suite").value, tier = $("#f-tier").value;
    const outcome = $("#f-outcome").value;
    const words = $("#f-text").value.toLowerCase().split(/\s+/).filter(Boolean);
    const parts = [];
    let shown = 0;
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      if (suite && row[0] !== suite) continue;
      if (tier && row[1] !== tier) continue;
      if (words.length && !words.every((w) => row[4].indexOf(w) >= 0)) continue;
      if (!outcomeMatches(r, outcome)) continue;
      parts.push(renderRow(r));
      shown++;
    }
    $("#grid tbody").innerHTML = parts.join("");
    $("#shown").textContent = shown + " of " + rows.length + " tasks";
    window.llmbenchTimings.lastFilterMs = performance.now() - start;
  }

  // ------------------------------------------------------------------ highlighting
  const KEYWORDS = {
    python: new Set(("False None True and as assert async await break class continue def del " +
      "elif else except finally for from global if import in is lambda nonlocal not or pass " +
      "raise return try while with yield match case").split(" ")),
    shell: new Set(("if then else elif fi for while until do done case esac in function " +
      "return export local select").split(" ")),
    json: new Set(["true", "false", "null"]),
  };
  const BUILTINS = new Set(("print len range int str float list dict set tuple bool sorted " +
    "enumerate zip map filter sum min max abs any all isinstance type open super object " +
    "Exception ValueError TypeError KeyError IndexError self cls").split(" "));
  const RULES = {
    python: [
      ["c", /#[^\n]*/y],
      ["s", /[rRbBuUfF]{0,2}("""[\s\S]*?(?:"""|$(?![\s\S]))|'''[\s\S]*?(?:'''|$(?![\s\S])))/y],
      ["s", /[rRbBuUfF]{0,2}("(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)/y],
      ["n", /\b(?:0[xob][\da-fA-F_]+|\d[\d_]*\.?\d*(?:[eE][+-]?\d+)?j?)\b/y],
      ["b", /@[\w.]+/y],
      ["w", /[A-Za-z_]\w*/y],
    ],
    shell: [
      ["c", /(?:^|(?<=\s))#[^\n]*/y],
      ["s", /'[^']*'?|"(?:[^"\\]|\\.)*"?/y],
      ["v", /\$(?:\{[^}]*\}?|\w+|[@*#?$!0-9])/y],
      ["n", /\b\d+\b/y],
      ["o", /\|\||&&|[|;<>&]+/y],
      ["w", /[A-Za-z_][\w.-]*/y],
    ],
    json: [
      ["s", /"(?:[^"\\]|\\.)*"?/y],
      ["n", /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y],
      ["w", /[a-z]+/y],
    ],
  };
  const LANGS = { python: "python", py: "python", python3: "python", bash: "shell", sh: "shell",
    shell: "shell", console: "shell", zsh: "shell", json: "json" };
  function highlight(code, lang) {
    const kind = LANGS[(lang || "").toLowerCase()];
    if (!kind) return esc(code);
    const rules = RULES[kind], keywords = KEYWORDS[kind];
    let out = "", pos = 0, plain = "", previous = "";
    const flush = () => { out += esc(plain); plain = ""; };
    while (pos < code.length) {
      let matched = false;
      for (const [cls, re] of rules) {
        re.lastIndex = pos;
        const m = re.exec(code);
        if (!m || !m[0]) continue;
        let css = cls;
        if (cls === "w") {
          css = keywords.has(m[0]) ? "k" : previous === "def" || previous === "class" ? "f" :
            kind === "python" && BUILTINS.has(m[0]) ? "b" : "";
          previous = m[0];
        }
        flush();
        out += css ? '<span class="hl-' + css + '">' + esc(m[0]) + "</span>" : esc(m[0]);
        pos += m[0].length;
        matched = true;
        break;
      }
      if (!matched) {
        if (!/\s/.test(code[pos])) previous = code[pos];
        plain += code[pos++];
      }
    }
    flush();
    return out;
  }
  // A markdown answer: prose as text, fenced blocks highlighted by their language.
  function renderAnswer(text) {
    if (!text) return '<p class="meta">(empty)</p>';
    const lines = text.split("\n");
    let out = "", prose = [], block = null;
    const flushProse = () => {
      const joined = prose.join("\n").trim();
      if (joined) out += '<div class="prose">' + esc(joined) + "</div>";
      prose = [];
    };
    for (const line of lines) {
      const fence = /^\s*(`{3,}|~{3,})\s*([\w+-]*)/.exec(line);
      if (block) {
        if (fence && fence[1][0] === block.fence[0] && fence[1].length >= block.fence.length &&
            !fence[2]) {
          out += codeBlock(block.lines.join("\n"), block.lang, true);
          block = null;
        } else block.lines.push(line);
      } else if (fence) {
        flushProse();
        block = { fence: fence[1], lang: fence[2], lines: [] };
      } else prose.push(line);
    }
    if (block) out += codeBlock(block.lines.join("\n"), block.lang, false);
    flushProse();
    return out;
  }
  function codeBlock(code, lang, closed) {
    return '<pre class="code" data-lang="' + esc(lang) + '">' + highlight(code, lang) + "</pre>" +
      (closed ? "" : '<div class="cut">the block was never closed (cut off)</div>');
  }

  // ------------------------------------------------------------------ the case view
  function badge(outcome) {
    return '<span class="badge o-' + (CLASS[codeOf(outcome)] || "_") + '">' +
      esc(outcome.replace("_", " ")) + "</span>";
  }
  function codeOf(outcome) {
    for (const code in NAMES) if (NAMES[code] === outcome) return code;
    return "?";
  }
  function json(value) {
    return highlight(JSON.stringify(value, null, 2), "json");
  }
  function capped(field) {
    if (!field) return "";
    return esc(field.text) + (field.cut ? '\n<span class="cut">[cut at ' + field.text.length +
      " of " + field.length + " characters]</span>" : "");
  }
  function section(title, body) {
    return body ? "<h4>" + esc(title) + "</h4>" + body : "";
  }
  function folded(summary, body) {
    return body ? "<details><summary>" + esc(summary) + "</summary>" + body + "</details>" : "";
  }
  function expectation(expect) {
    const flat = JSON.stringify(expect);
    return '<pre class="code">' + (flat.length <= 72 ? highlight(flat, "json") : json(expect)) +
      "</pre>";
  }
  function got(value, suite) {
    if (value == null) return '<span class="meta">' + (suite === "tooling" ?
      "see the tool transcript" : "nothing ran") + "</span>";
    if (suite === "python") {
      let text = value.status;
      if (value.value) text += ": " + value.value.text + (value.value.cut ? " [cut]" : "");
      if (value.exception) text += ": " + value.exception;
      if (value.detail) text += "\n" + value.detail.text;
      return "<pre>" + esc(text) + "</pre>";
    }
    if (suite === "cli") {
      const parts = [];
      if (value.stdout) parts.push("stdout: " + value.stdout.text);
      if (value.file) parts.push(value.file + " (" + value.kind + "): " +
        (value.content ? value.content.text : ""));
      if (value.exit_code != null) parts.push("exit code " + value.exit_code);
      return "<pre>" + esc(parts.join("\n")) + "</pre>";
    }
    return '<pre class="code">' + json(value) + "</pre>";
  }
  function shellRun(run, title) {
    if (!run) return "";
    let meta = "exit code " + run.exit_code + ", " + (run.seconds || 0).toFixed(2) + "s" +
      (run.timed_out ? ", timed out" : "") +
      (run.output_cut_by_sandbox ? ", output cut by the sandbox" : "");
    let out = '<p class="meta">' + esc(title + ": " + meta) + "</p>";
    out += section("stdout", "<pre>" + capped(run.stdout) + "</pre>");
    if (run.stderr && run.stderr.text) out += section("stderr", "<pre>" + capped(run.stderr) + "</pre>");
    const files = Object.keys(run.files || {});
    if (files.length) {
      let listing = "";
      for (const name of files) {
        const f = run.files[name];
        listing += esc(name) + " (" + esc(f.kind) + (f.size != null ? ", " + f.size + " bytes" : "") +
          ")" + (f.content ? ":\n" + capped(f.content) : "") + "\n";
      }
      out += folded("work dir after the run (" + files.length + " entries)", "<pre>" + listing + "</pre>");
    }
    return out;
  }
  function stats(d) {
    const s = d.stats || {};
    const parts = [];
    if (s.seconds != null) parts.push("generation " + Number(s.seconds).toFixed(2) + "s");
    if (s.ttft_s != null) parts.push("first token " + Number(s.ttft_s).toFixed(2) + "s");
    if (s.prompt_tokens != null) parts.push(s.prompt_tokens + " prompt tokens");
    if (s.completion_tokens != null) parts.push(s.completion_tokens + " completion tokens");
    if (s.reasoning_tokens) parts.push(s.reasoning_tokens + " reasoning tokens");
    if (s.tokens_counted_by) parts.push("counted by " + s.tokens_counted_by);
    if (s.decode_tok_s) parts.push(Number(s.decode_tok_s).toFixed(1) + " tok/s decoding");
    if (s.requests) parts.push(s.requests + " request(s)");
    if (s.retries) parts.push(s.retries + " retries");
    if (s.max_tokens) parts.push("max_tokens " + s.max_tokens);
    if (d.load_s != null) parts.push("model load " + Number(d.load_s).toFixed(1) + "s");
    return '<p class="meta">' + esc(parts.join(" · ")) + "</p>";
  }
  async function openCase(c, r, caseIndex) {
    const d = (await columnDetails(c))[r];
    const row = rows[r], col = columns[c];
    if (!d) return;
    const suite = row[0], inp = d.inputs || {};
    $("#case-title").textContent = row[2] + " · " + col.label + " (" + suite +
      (row[1] ? ", " + row[1] : "") + ")";
    let body = '<p class="meta">' + esc(row[3]) + " · run " + esc(col.run) + "</p>" + stats(d);
    const found = STABILITY[c][r];
    if (found) {
      body += '<p class="stability">stability: ' + esc(found[1]) +
        (found[2] > 1 ? '<span class="meta"> · what follows is the first sample</span>' : "") +
        "</p>";
    }
    body += section("Cases", casesTable(d, suite, caseIndex));
    body += section("Prompt", "<pre>" + esc(inp.prompt) + "</pre>" +
      folded("system prompt", "<pre>" + esc(inp.system) + "</pre>") +
      (inp.files ? folded("files given (" + Object.keys(inp.files).length + ")",
        "<pre>" + esc(Object.keys(inp.files).map((k) => "== " + k + "\n" + inp.files[k]).join("\n")) + "</pre>") : "") +
      (inp.tools && suite === "tooling" ? folded("tools offered (" + inp.tools.length + ")",
        '<pre class="code">' + json(inp.tools) + "</pre>") : "") +
      (inp.reference != null ? folded("reference answer", '<pre class="code">' +
        (typeof inp.reference === "string" ? highlight(inp.reference, suite === "cli" ? "bash" : "python") :
          json(inp.reference)) + "</pre>") : ""));
    if (d.answer == null) {
      body += section("Answer", '<p class="meta">no answer was produced (see the cases)</p>');
    } else {
      body += section("Answer" + (d.truncated ? " (cut at max_tokens)" : ""), renderAnswer(d.answer));
    }
    if (d.reasoning) body += folded("reasoning (" + d.reasoning.length + " characters)", "<pre>" + esc(d.reasoning) + "</pre>");
    if (d.turns && d.turns.length) body += section("Tool transcript", transcript(d.turns));
    body += section("What ran", ran(d.exec || {}, suite));
    $("#case-body").innerHTML = body;
    const aside = $("#case");
    aside.hidden = false;
    aside.scrollTop = 0;
    history.replaceState(null, "", "#case-" + c + "-" + r);
    const focus = aside.querySelector("tr.focus");
    if (focus) focus.scrollIntoView({ block: "nearest" });
  }
  function casesTable(d, suite, caseIndex) {
    let out = '<table class="cases"><thead><tr><th>case</th><th>outcome</th><th>expected</th>' +
      "<th>got</th></tr></thead><tbody>";
    d.cases.forEach((k, i) => {
      out += "<tr" + (i === caseIndex ? ' class="focus"' : "") + "><td>" + esc(k.id) + "</td><td>" +
        badge(k.outcome) + (k.detail ? '<div class="meta">' + esc(k.detail) + "</div>" : "") +
        "</td><td>" + expectation(k.expect) + "</td><td>" + got(k.got, suite) + "</td></tr>";
    });
    return out + "</tbody></table>";
  }
  function transcript(turns) {
    let out = "";
    turns.forEach((turn, i) => {
      out += '<div class="turn"><div class="meta">turn ' + (i + 1) +
        (turn.finish ? " · finish " + esc(turn.finish) : "") + "</div>";
      if (turn.reasoning) out += folded("reasoning", "<pre>" + esc(turn.reasoning) + "</pre>");
      if (turn.content) out += '<div class="prose">' + esc(turn.content) + "</div>";
      for (const call of turn.calls) {
        let args = call.arguments;
        try { args = JSON.stringify(JSON.parse(args)); } catch (e) { /* shown as sent */ }
        out += '<pre class="code">→ ' + esc(call.name) + "(" + highlight(String(args), "json") +
          ")\n← " + json(call.result) + "</pre>";
      }
      if (!turn.content && !turn.calls.length) out += '<div class="meta">(empty reply)</div>';
      out += "</div>";
    });
    return out;
  }
  function ran(x, suite) {
    if (x.error) return "<pre>" + esc(x.error) + "</pre>";
    let out = "";
    if (x.not_run) out += '<p class="meta">nothing ran: ' + esc(x.not_run.outcome) + ": " + esc(x.not_run.detail) + "</p>";
    if (x.code != null) out += '<p class="meta">the code the cases imported</p><pre class="code">' + highlight(x.code, "python") + "</pre>";
    if (x.command != null) out += '<pre class="code">$ ' + highlight(x.command, "bash") + "</pre>";
    out += shellRun(x.run, "the command");
    out += shellRun(x.reference_run, "the reference command");
    if (!out) out = '<p class="meta">' + (suite === "tooling" ? "the calls ran against the mock tools (above)" : "nothing") + "</p>";
    if (x.cap) out += '<p class="meta">outputs are kept up to ' + x.cap + " characters each</p>";
    return out;
  }

  // ------------------------------------------------------------------ wiring
  header();
  let legend = "";
  for (const label in MARKS) {
    legend += '<span><i class="mark">' + esc(MARKS[label]) + "</i> " + esc(label) + "</span>";
  }
  $("#stability-legend").innerHTML = legend + "<span>a mark: the task was not stable " +
    "(hover over the cell for the label)</span>";
  options($("#f-suite"), unique(0));
  options($("#f-tier"), unique(1));
  window.llmbenchTimings = {};
  for (const id of ["#f-suite", "#f-tier", "#f-outcome"]) $(id).addEventListener("change", applyFilters);
  $("#f-text").addEventListener("input", applyFilters);
  $("#grid tbody").addEventListener("click", (event) => {
    const cell = event.target.closest("td.c");
    if (!cell) return;
    // Which case's stripe was clicked: its share of the cell's width.
    const box = cell.firstChild.getBoundingClientRect();
    const share = (event.clientX - box.left) / box.width;
    const stripe = share >= 0 && share < 1 ? Math.floor(share * cell.dataset.o.length) : -1;
    openCase(Number(cell.dataset.c), Number(cell.dataset.r), stripe);
  });
  const close = () => { $("#case").hidden = true; history.replaceState(null, "", "#"); };
  $("#case-close").addEventListener("click", close);
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  applyFilters();
  const deep = /^#case-(\d+)-(\d+)$/.exec(location.hash);
  if (deep) openCase(Number(deep[1]), Number(deep[2]), -1);
  window.llmbenchTimings.initMs = performance.now() - t0;
  window.llmbenchTimings.readyAt = performance.now(); // ms since navigation started
  requestAnimationFrame(() => setTimeout(() => {
    window.llmbenchTimings.paintedAt = performance.now(); // after the first frame with the grid
  }));
  window.llmbenchReady = true;
  window.llmbench = { openCase: openCase, applyFilters: applyFilters };
})();
