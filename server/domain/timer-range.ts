// The longest delay Node's setTimeout keeps: 2^31 - 1 ms (24.8 days). A longer one runs after 1 ms, with a TimeoutOverflowWarning.
export const MAX_TIMER_MS = 2 ** 31 - 1;
