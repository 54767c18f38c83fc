// A FIFO between the shell's pipes and a consumer that may be slow: it asks the producer to pause once too many bytes wait.

/** Counted per queued item on top of its bytes, so a flood of tiny chunks is bounded too. */
const ITEM_OVERHEAD = 64;

/** An async FIFO with a byte budget; `onPressure(true)` when the budget is spent, `onPressure(false)` once half is free again. */
export class OutputQueue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((item: T) => void)[] = [];
  private bytes = 0;
  private full = false;

  constructor(
    private readonly limitBytes: number,
    private readonly sizeOf: (item: T) => number,
    private readonly onPressure: (full: boolean) => void,
  ) {}

  /** Bytes waiting for the consumer. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** Hands the item to a waiting consumer, or queues it. */
  push(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter(item);
      return;
    }
    this.items.push(item);
    this.bytes += this.sizeOf(item) + ITEM_OVERHEAD;
    if (!this.full && this.bytes >= this.limitBytes) {
      this.full = true;
      this.onPressure(true);
    }
  }

  /** The next item, waiting for one if needed. */
  next(): Promise<T> {
    const item = this.items.shift();
    if (item === undefined) return new Promise((resolve) => this.waiters.push(resolve));
    this.bytes -= this.sizeOf(item) + ITEM_OVERHEAD;
    this.relieve();
    return Promise.resolve(item);
  }

  /** Drops the queued items `drop` selects (e.g. output after a cut). */
  discard(drop: (item: T) => boolean): void {
    const kept = this.items.filter((item) => !drop(item));
    this.items.length = 0;
    this.items.push(...kept);
    this.bytes = kept.reduce((sum, item) => sum + this.sizeOf(item) + ITEM_OVERHEAD, 0);
    this.relieve();
  }

  private relieve(): void {
    if (this.full && this.bytes <= this.limitBytes / 2) {
      this.full = false;
      this.onPressure(false);
    }
  }
}
