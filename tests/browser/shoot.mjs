// Screenshots of a motion4d player page in headless Chromium (playwright-core, software WebGL).
//   node shoot.mjs JOB.json   JOB: {html, web (the player folder, whose node_modules has playwright-core),
//                                   chromium, shots: [{t, view, w, h, mode, out}], probe (optional: a JS
//                                   expression evaluated in the page at the end, its value reported)}
// The first shot (and each one of another size) loads FILE.html?t=&view=&w=&h=&mode= from disk and waits for
// window.motion4dReady; the others call window.motion4d.show(). Prints JSON: {launched, webgl, console, shots, probe}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import path from "node:path";

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const require = createRequire(path.join(job.web, "package.json"));
const { chromium } = require("playwright-core");

const result = { launched: false, webgl: null, console: [], shots: [] };
let browser;
try {
  browser = await chromium.launch({
    executablePath: job.chromium,
    args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--no-sandbox", "--disable-dev-shm-usage"],
    timeout: 60000,
  });
} catch (err) {
  result.error = String(err.message || err).split("\n")[0];
  console.log(JSON.stringify(result));
  process.exit(0);
}
result.launched = true;
try {
  const maxW = Math.max(...job.shots.map((s) => s.w));
  const maxH = Math.max(...job.shots.map((s) => s.h));
  const page = await browser.newPage({ viewport: { width: maxW, height: maxH + 80 }, deviceScaleFactor: 1 });
  page.on("console", (m) => result.console.push({ type: m.type(), text: m.text() }));
  page.on("pageerror", (e) => result.console.push({ type: "pageerror", text: String(e) }));
  let loaded = null;
  for (const s of job.shots) {
    const t0 = Date.now();
    const size = `${s.w}x${s.h}`;
    if (loaded !== size) {
      const q = new URLSearchParams({ t: String(s.t), view: String(s.view), w: String(s.w), h: String(s.h) });
      if (s.mode) q.set("mode", s.mode);
      await page.goto(`${pathToFileURL(job.html).href}?${q}`);
      await page.waitForFunction(() => window.motion4dReady === true, null, { timeout: 120000 });
      loaded = size;
      if (result.webgl === null) {
        result.webgl = await page.evaluate(() => {
          const gl = document.createElement("canvas").getContext("webgl2");
          return gl ? gl.getParameter(gl.RENDERER) : "";
        });
      }
    } else {
      await page.evaluate((x) => window.motion4d.show(x), { t: s.t, view: s.view, mode: s.mode });
    }
    await page.screenshot({ path: s.out, clip: { x: 0, y: 0, width: s.w, height: s.h } });
    result.shots.push({ ...s, ms: Date.now() - t0 });
  }
  if (job.probe) result.probe = await page.evaluate(job.probe);
} catch (err) {
  result.error = String(err.message || err).split("\n")[0];
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
