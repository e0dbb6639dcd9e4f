// Bundle the player (src/main.js, three.js from node_modules) into dist/player.js (or the file given as the
// argument): one IIFE, minified, that the HTML export inlines. Run `npm ci && npm run build` here after
// changing src/, and commit dist/ (tests/test_web_export.py checks that it matches the sources).
import { build } from "esbuild";

await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  format: "iife",
  minify: true,
  target: ["es2020"],
  legalComments: "eof",
  outfile: process.argv[2] || "dist/player.js",
  logLevel: "info",
});
