// A handle on one command for its caller: stdin bytes and signals, held until the command is running, then passed on.

/** What a running command takes from its handle. */
export interface CommandSink {
  /** False when the input buffer is full (nothing taken). */
  input(data: Uint8Array, eof: boolean): boolean;
  signal(signal: NodeJS.Signals): void;
}

/**
 * Created by the conversation before the command reaches the shell (the caller learns the command
 * id from `command_started`, which comes first, and may send at once); the command attaches when it
 * starts. Until then input waits here, within the same bound as in the shell's pipe.
 */
export class CommandControl {
  private sink: CommandSink | undefined;
  private readonly pending: { data: Uint8Array; eof: boolean }[] = [];
  private pendingBytes = 0;
  private readonly signals: NodeJS.Signals[] = [];
  private done = false;

  constructor(
    /** Whether the command gets a stdin fed from here (else /dev/null, as without a handle). */
    readonly stdin: boolean,
    private readonly bufferBytes: number,
  ) {}

  /** Input for the command's stdin; false when more than the buffer would wait. */
  sendInput(data: Uint8Array, eof: boolean): boolean {
    if (this.done) return true;
    if (this.sink !== undefined) return this.sink.input(data, eof);
    if (this.pendingBytes + data.length > this.bufferBytes) return false;
    this.pending.push({ data, eof });
    this.pendingBytes += data.length;
    return true;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.done) return;
    if (this.sink !== undefined) this.sink.signal(signal);
    else this.signals.push(signal);
  }

  /** The command is running: it gets what waited, in order (input before signals, as sent first). */
  attach(sink: CommandSink): void {
    this.sink = sink;
    for (const { data, eof } of this.pending.splice(0)) sink.input(data, eof);
    this.pendingBytes = 0;
    for (const signal of this.signals.splice(0)) sink.signal(signal);
  }

  /** The command ended: later input and signals are dropped. */
  close(): void {
    this.done = true;
    this.sink = undefined;
  }
}
