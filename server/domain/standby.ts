// One thing made before the request that will want it (the next conversation's shell), handed over whole or not at all.

/**
 * Keeps at most one item ready. Why: a conversation's start spends most of its time on things that
 * do not depend on the request (a uid, a mounted workspace, the shell's spawn through its wrappers
 * and the cgroup join, its start-up handshake); made ahead, the start only hands them over.
 * An item is never handed out twice, and one that failed to be made is simply not there: the
 * caller then makes its own, and reports that one's error.
 */
export class Standby<T> {
  private next: Promise<T | undefined> | undefined;
  private closed = false;

  constructor(
    private readonly make: () => Promise<T>,
    private readonly dispose: (item: T) => Promise<void>,
    /** False for an item that went bad while it waited (its shell died): disposed, not handed out. */
    private readonly usable: (item: T) => boolean,
  ) {}

  /** Starts making the next item, unless one is ready or under way, or the standby is closed. */
  prepare(): void {
    if (this.closed || this.next !== undefined) return;
    this.next = this.make().catch(() => undefined);
  }

  /** The ready item (waiting for the one under way: it is further along than a new one), or undefined. */
  async take(): Promise<T | undefined> {
    const pending = this.next;
    this.next = undefined;
    const item = await pending;
    if (item === undefined) return undefined;
    if (!this.usable(item)) {
      void this.dispose(item).catch(() => {});
      return undefined;
    }
    return item;
  }

  /** Disposes of the waiting item (once made, if under way); nothing is made afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.next;
    this.next = undefined;
    const item = await pending;
    if (item !== undefined) await this.dispose(item);
  }
}
