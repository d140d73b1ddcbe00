// The review page served at GET /: one static HTML file with inline CSS and
// JS (no build step, no external assets). Drop or pick an image; it is sent
// to /v1/moderate as multipart and the decision is shown: flagged or passed,
// the categories, the score against the threshold as a bar, and the image,
// blurred when flagged until clicked.
export const REVIEW_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vlm-grpo review</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em;color:#222}
#drop{border:2px dashed #888;border-radius:8px;padding:2em;text-align:center;cursor:pointer}
#drop.over{background:#eef}
.card{margin-top:1.5em;border:1px solid #ccc;border-radius:8px;padding:1em}
.decision{font-size:1.4em;font-weight:bold}
.decision.flagged{color:#b00}.decision.passed{color:#080}
.bar{position:relative;height:18px;background:#eee;border-radius:4px;margin:.5em 0}
.bar .fill{position:absolute;left:0;top:0;bottom:0;background:#48c;border-radius:4px}
.bar .mark{position:absolute;top:-4px;bottom:-4px;width:2px;background:#b00}
img.preview{max-width:100%;max-height:360px;display:block;margin-top:.8em;transition:filter .2s}
img.preview.blurred{filter:blur(24px);cursor:pointer}
.err{color:#b00}
small{color:#666}
</style></head>
<body>
<h1>Moderation review</h1>
<p><small id="ready">checking the model...</small></p>
<div id="drop">Drop an image here, or <label><u>pick one</u><input id="file" type="file" accept="image/*" hidden></label></div>
<div id="results"></div>
<script>
const results = document.getElementById("results");
const drop = document.getElementById("drop");
fetch("/readyz").then(r => r.json()).then(j => {
  document.getElementById("ready").textContent = j.status === "ready" ? "model " + j.model + "; " + j.threshold_source : "model loading...";
}).catch(() => {});
function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
async function moderate(file) {
  const card = el("div", "card");
  card.dataset.state = "pending";
  card.appendChild(el("div", "", file.name + ": sending..."));
  results.prepend(card);
  const form = new FormData();
  form.append("file", file, file.name);
  let body;
  try {
    const r = await fetch("/v1/moderate", { method: "POST", body: form });
    body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : "HTTP " + r.status);
  } catch (e) {
    card.replaceChildren(el("div", "err", file.name + ": " + e.message));
    card.dataset.state = "error";
    return;
  }
  const x = body.results[0];
  card.replaceChildren();
  card.appendChild(el("div", "decision " + (x.flagged ? "flagged" : "passed"), (x.flagged ? "Flagged" : "Passed") + " - " + x.id));
  card.appendChild(el("div", "categories", "categories: " + (x.categories.length ? x.categories.join(", ") : "none")));
  const score = x.score === null ? 0 : x.score;
  card.appendChild(el("div", "score", "score " + score.toFixed(3) + (x.threshold === null ? " (decided by the answer: " + x.answer + ")" : " vs threshold " + x.threshold.toFixed(3))));
  const bar = el("div", "bar"); const fill = el("div", "fill"); fill.style.width = (100 * score).toFixed(1) + "%"; bar.appendChild(fill);
  if (x.threshold !== null) { const m = el("div", "mark"); m.style.left = (100 * x.threshold).toFixed(1) + "%"; bar.appendChild(m); }
  card.appendChild(bar);
  card.appendChild(el("small", "", x.threshold_source + "; " + x.model + "; " + x.latency_ms + " ms"));
  const img = el("img", "preview" + (x.flagged ? " blurred" : ""));
  img.alt = x.id; img.src = URL.createObjectURL(file);
  if (x.flagged) img.title = "flagged: click to reveal";
  img.addEventListener("click", () => img.classList.toggle("blurred"));
  card.appendChild(img);
  card.dataset.state = x.flagged ? "flagged" : "passed";
}
const input = document.getElementById("file");
input.addEventListener("change", () => { for (const f of input.files) moderate(f); input.value = ""; });
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); for (const f of e.dataTransfer.files) moderate(f); });
</script>
</body></html>
`;
