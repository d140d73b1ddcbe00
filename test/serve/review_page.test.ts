// The review page end to end in headless Chromium (Debian's /usr/bin/chromium
// driven by playwright-core; no browser download): pick an image, see the
// decision and the score bar, the image blurred when flagged, click reveals.
// Skips, saying why, only when no chromium binary exists.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import sharp from "sharp";
import { runConfigSchema } from "../../src/config/run_config.js";
import { validate } from "../../src/config/schema.js";
import { initModel } from "../../src/models/init_model.js";
import { type RunningServer, startServer } from "../../src/serve/server.js";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((f) => fs.existsSync(f));
let root = "";
let server: RunningServer | null = null;
after(async () => {
  await server?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

test("review page: upload an image, the decision shows, a flagged image is blurred until clicked", { skip: CHROMIUM ? false : "no chromium binary (/usr/bin/chromium); apt-get install chromium to run this test" }, async () => {
  const { chromium } = await import("playwright-core");
  root = fs.mkdtempSync(path.join(os.tmpdir(), "vlm-review-"));
  const model = (await initModel({ arch: "idefics3", preset: "tiny", outDir: path.join(root, "model"), seed: 7 })).dir;
  // Threshold 0 flags every image, so the blur must be applied.
  server = await startServer({ ...validate(runConfigSchema, {}, { file: "test" }).serve, port: 0, max_new_tokens: 4 }, { modelDir: model, threshold: { threshold: 0 } });
  await server.loaded;
  const img = path.join(root, "upload.png");
  await sharp({ create: { width: 32, height: 32, channels: 3, background: "#c33" } }).png().toFile(img);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage();
    await page.goto(server.url + "/");
    await page.locator("#ready", { hasText: "threshold 0" }).waitFor();
    await page.setInputFiles("#file", img);
    const card = page.locator('.card[data-state="flagged"]');
    await card.waitFor({ timeout: 20_000 });
    assert.match(await card.locator(".decision").innerText(), /Flagged - upload\.png/);
    assert.match(await card.locator(".score").innerText(), /score \d\.\d{3} vs threshold 0\.000/);
    const preview = card.locator("img.preview");
    assert.ok((await preview.getAttribute("class"))!.includes("blurred"));
    assert.match(await preview.evaluate((e) => (globalThis as unknown as { getComputedStyle(x: unknown): { filter: string } }).getComputedStyle(e).filter), /blur\(24px\)/);
    await preview.click();
    assert.ok(!(await preview.getAttribute("class"))!.includes("blurred"), "a click reveals the image");
    // The un-blur is a 0.2 s CSS transition: poll until it has ended.
    let filter = "";
    for (let i = 0; i < 50 && filter !== "none"; i++) {
      filter = await preview.evaluate((e) => (globalThis as unknown as { getComputedStyle(x: unknown): { filter: string } }).getComputedStyle(e).filter);
      if (filter !== "none") await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(filter, "none");
  } finally {
    await browser.close();
  }
});
