// Bundle the player (src/main.js, three.js from node_modules) into dist/player.js: one IIFE, minified,
// that the HTML export inlines. Run `npm ci && npm run build` here after changing src/; commit dist/.
import { build } from "esbuild";

await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  format: "iife",
  minify: true,
  target: ["es2020"],
  legalComments: "eof",
  outfile: "dist/player.js",
  logLevel: "info",
});
