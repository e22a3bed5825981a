// Drive the web demo (app.py) in headless Chromium: upload an image, type an instruction, press
// Answer, wait for the answer image, save a screenshot. Prints one JSON line describing what the
// page shows; exits 1 with a message (and still writes the screenshot) when a step fails.
//
//   node tests/browser/demo_page.mjs --url http://127.0.0.1:7860 --image photo.png \
//       --instruction "segment the cat." --screenshot out.png [--chromium /usr/bin/chromium] [--timeout 45000]
//
// playwright-core only (no browser download): it launches the system Chromium at --chromium.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: opt } = parseArgs({
  options: {
    url: { type: "string" },
    image: { type: "string" },
    instruction: { type: "string", default: "segment the cat." },
    screenshot: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    timeout: { type: "string", default: "45000" },
  },
});
for (const key of ["url", "image", "screenshot"]) {
  if (!opt[key]) {
    console.error(`missing --${key}`);
    process.exit(2);
  }
}
const timeout = Number(opt.timeout);

// The flags this machine's closed network needs: no background requests, no QUIC, no first-run or
// component/sync traffic; a fresh profile so no earlier run leaks in.
const profile = mkdtempSync(join(tmpdir(), "instructcv-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: opt.chromium,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1280, height: 900 },
});

let step = "open the page";
let failure = null;
let result = {};
const page = browser.pages()[0] ?? (await browser.newPage());
const consoleErrors = [];
page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
page.on("pageerror", (err) => consoleErrors.push(String(err)));
try {
  page.setDefaultTimeout(timeout);
  await page.goto(opt.url, { waitUntil: "domcontentloaded" });

  step = "upload the image";
  await page.locator("#input-image input[type=file]").setInputFiles(opt.image);
  // the upload is done when the input component shows the picture
  await page.locator("#input-image img").first().waitFor({ state: "visible" });

  step = "type the instruction";
  const box = page.locator("#instruction textarea, #instruction input").first();
  await box.fill(opt.instruction);

  step = "press Answer";
  await page.locator("#submit").click();

  step = "wait for the answer image";
  const answerImg = page.locator("#answer img").first();
  await answerImg.waitFor({ state: "visible" });
  await page.waitForFunction(
    () => {
      const img = document.querySelector("#answer img");
      return img && img.complete && img.naturalWidth > 0;
    },
    null,
    { timeout },
  );

  step = "wait for the summary";
  await page.waitForFunction(
    () => {
      const el = document.querySelector("#summary textarea, #summary input");
      return el && el.value.trim().length > 0;
    },
    null,
    { timeout },
  );

  step = "read the page";
  result = await page.evaluate(() => {
    const img = document.querySelector("#answer img");
    const decoded = document.querySelector("#decoded img");
    const summary = document.querySelector("#summary textarea, #summary input");
    return {
      answer_src: img.getAttribute("src"),
      answer_natural_width: img.naturalWidth,
      answer_natural_height: img.naturalHeight,
      decoded_natural_width: decoded ? decoded.naturalWidth : 0,
      summary: summary ? summary.value : "",
      title: document.title,
    };
  });
} catch (err) {
  failure = `${step}: ${err.message.split("\n")[0]}`;
} finally {
  try {
    await page.screenshot({ path: opt.screenshot, fullPage: true });
  } catch (err) {
    failure = failure ?? `screenshot: ${err.message.split("\n")[0]}`;
  }
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
result.console_errors = consoleErrors;
if (failure) {
  console.error(`browser test failed at step "${failure}"; screenshot: ${opt.screenshot}`);
  if (consoleErrors.length) console.error(`page console errors: ${consoleErrors.join(" | ")}`);
  process.exit(1);
}
console.log(JSON.stringify(result));
