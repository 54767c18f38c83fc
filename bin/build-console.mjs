// Bundles the web console (console/*.tsx, Preact) with esbuild into content-hashed assets and writes the index.html that references them.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The page shell: no inline script or style, so the strict CSP holds; the icon is data: so no request 404s. */
function indexHtml(script, style) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Veil console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${style}">
<script type="module" src="/assets/${script}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The Veil console needs JavaScript.</noscript>
</body>
</html>
`;
}

/** Builds the console into outDir (index.html + assets/); resolves to the asset file names. */
export async function buildConsole(outDir) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, "assets"), { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: ["console/main.tsx"],
    outdir: join(outDir, "assets"),
    entryNames: "[name]-[hash]",
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    tsconfig: "console/tsconfig.json",
    minify: true,
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const script = outputs.find((f) => f.endsWith(".js"));
  const style = outputs.find((f) => f.endsWith(".css"));
  if (script === undefined || style === undefined) throw new Error(`console build: expected one .js and one .css, got ${outputs.join(", ")}`);
  writeFileSync(join(outDir, "index.html"), indexHtml(script, style));
  return { script, style };
}
