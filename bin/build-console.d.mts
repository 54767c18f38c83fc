// Types for bin/build-console.mjs, so the tests can build the console the same way `npm run build` does.
/** Builds the console into outDir (index.html + assets/); resolves to the asset file names. */
export function buildConsole(outDir: string): Promise<{ script: string; style: string }>;
