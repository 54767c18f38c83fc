// Compiles conversations' mask sets on a thread of its own, so a start with thousands of secrets does not stall every other call.
import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { type CompiledMaskSet, compileMaskSet, type MaskSet, type MaskSetOptions, maskSetOf } from "./masker.js";

/** What the host asks the thread. */
export interface CompileRequest {
  id: number;
  values: readonly string[];
  options: MaskSetOptions;
}

/** The thread's answer: the set as data (its arrays transferred), or why not. */
export type CompileReply = { id: number; ok: true; compiled: CompiledMaskSet } | { id: number; ok: false; error: { name: string; message: string } };

/**
 * How to start the thread: its module beside this one, compiled or not. The sources need tsx's
 * loader, which Node 20 does not take from a worker's execArgv: an eval entry registers it first.
 */
function threadEntry(): { entry: string | URL; eval: boolean } {
  const ext = extname(fileURLToPath(import.meta.url));
  const url = new URL(`./mask-compiler-thread${ext}`, import.meta.url);
  if (ext !== ".ts") return { entry: url, eval: false };
  // The ESM build of tsx's API (what its package's "import" condition gives for tsx/esm/api).
  const api = pathToFileURL(join(dirname(createRequire(import.meta.url).resolve("tsx/package.json")), "dist/esm/api/index.mjs")).href;
  return { entry: `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`, eval: true };
}

/** One compile thread and the compiles waiting for it. */
class CompileThread {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (compiled: CompiledMaskSet) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  gone = false;

  constructor(onGone: (thread: CompileThread) => void) {
    const { entry, eval: isCode } = threadEntry();
    this.worker = new Worker(entry, { eval: isCode, execArgv: [] });
    // Idle, it must not keep the process alive; compiles in flight keep it referenced. Again once
    // online: an unref before that does not hold (Node 20), and `veil serve` would not exit.
    this.worker.unref();
    this.worker.once("online", () => {
      if (this.waiting.size === 0) this.worker.unref();
    });
    this.worker.on("message", (reply: CompileReply) => this.answer(reply));
    const lost = () => {
      if (this.gone) return;
      this.gone = true;
      for (const w of this.waiting.values()) w.reject(new ThreadLost());
      this.waiting.clear();
      onGone(this);
    };
    this.worker.on("error", lost);
    this.worker.on("exit", lost);
  }

  compile(values: readonly string[], options: MaskSetOptions): Promise<CompiledMaskSet> {
    if (this.gone) return Promise.reject(new ThreadLost());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, values, options } satisfies CompileRequest);
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }

  private answer(reply: CompileReply): void {
    const waiter = this.waiting.get(reply.id);
    if (waiter === undefined) return;
    this.waiting.delete(reply.id);
    if (this.waiting.size === 0) this.worker.unref();
    if (reply.ok) waiter.resolve(reply.compiled);
    // The thread's errors are createMaskSet's own (a RangeError for a value too long): thrown as they were.
    else waiter.reject(reply.error.name === "RangeError" ? new RangeError(reply.error.message) : new Error(reply.error.message));
  }
}

/** The thread died under a compile (out of memory, or killed): the compile is redone in place. */
class ThreadLost extends Error {}

let shared: CompileThread | undefined;

function compileThread(): CompileThread {
  shared ??= new CompileThread((gone) => {
    if (shared === gone) shared = undefined;
  });
  return shared;
}

/** Starts the thread now, so the first conversation does not wait for it to load. */
export function warmMaskCompiler(): void {
  compileThread();
}

/** Ends the thread as if it had crashed (tests only). */
export function terminateMaskCompiler(): Promise<number> | undefined {
  return shared?.terminate();
}

/**
 * createMaskSet, compiled in the mask-compiling thread while this one goes on. Rejects as
 * createMaskSet throws. If the thread dies under it, the set is compiled here instead: the same
 * set either way, only the event loop waits for it then.
 */
export async function compileMaskSetOffThread(values: readonly string[], options: MaskSetOptions = {}): Promise<MaskSet> {
  try {
    return maskSetOf(await compileThread().compile(values, options));
  } catch (error) {
    if (!(error instanceof ThreadLost)) throw error;
    return maskSetOf(compileMaskSet(values, options));
  }
}
