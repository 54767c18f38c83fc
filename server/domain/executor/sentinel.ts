// Finds the end-of-command marker in a byte stream and releases everything before it, also when the marker is split across chunks.

/** What one chunk gave: bytes that belong to the command, and, once the marker is seen, the bytes after it. */
export interface ScanResult {
  output: Buffer;
  found: boolean;
  rest: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Scans one stream (stdout or stderr) of one command for its marker. */
export class SentinelScanner {
  private held: Buffer = EMPTY;
  private seen = false;

  constructor(private readonly marker: Buffer) {}

  /** True once the marker went by. */
  get found(): boolean {
    return this.seen;
  }

  /** Feeds a chunk. Holds back a tail that could be the start of the marker until the next chunk settles it. */
  push(chunk: Buffer): ScanResult {
    if (this.seen) return { output: EMPTY, found: true, rest: chunk };
    const data = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    const at = data.indexOf(this.marker);
    if (at >= 0) {
      this.seen = true;
      this.held = EMPTY;
      return { output: data.subarray(0, at), found: true, rest: data.subarray(at + this.marker.length) };
    }
    const keep = this.partialMarkerAtEnd(data);
    this.held = Buffer.from(data.subarray(data.length - keep));
    return { output: data.subarray(0, data.length - keep), found: false, rest: EMPTY };
  }

  /** Releases held-back bytes when the stream ends without the marker (the shell died): they were output after all. */
  flush(): Buffer {
    const held = this.held;
    this.held = EMPTY;
    return held;
  }

  /** Length of the longest tail of `data` that is a proper prefix of the marker. */
  private partialMarkerAtEnd(data: Buffer): number {
    for (let length = Math.min(this.marker.length - 1, data.length); length > 0; length--) {
      if (data[data.length - length] !== this.marker[0]) continue;
      if (data.subarray(data.length - length).equals(this.marker.subarray(0, length))) return length;
    }
    return 0;
  }
}
