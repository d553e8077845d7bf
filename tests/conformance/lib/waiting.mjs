// Awaiting events instead of sleeping. Every wait has a guard timeout that only turns a hang into a
// readable failure; no test outcome depends on how long something took.

export const GUARD_MS = 10_000;

/** Rejects with "timed out after N ms waiting for <what>" if `promise` has not settled by then. */
export function withTimeout(promise, what, ms = GUARD_MS) {
  let timer;
  const guard = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer));
}

/** Items pushed by callbacks (handlers, stream observers); `until` awaits a condition on them. */
export class Collector {
  constructor() {
    this.items = [];
    this._waiters = [];
  }

  push(item) {
    this.items.push(item);
    this._waiters = this._waiters.filter((w) => !w.check());
  }

  /** Handler for `connection.on(name, ...)`: records the argument list. */
  get handler() {
    return (...args) => this.push(args);
  }

  /**
   * Resolves when `condition` holds: a number n means "at least n items", a function is tested
   * against each item and resolves with the first match.
   */
  until(condition, what, ms = GUARD_MS) {
    const test =
      typeof condition === "number"
        ? () => (this.items.length >= condition ? { value: this.items } : null)
        : () => {
            const found = this.items.find(condition);
            return found === undefined ? null : { value: found };
          };
    const description = what ?? (typeof condition === "number" ? `${condition} items` : "a matching item");
    return withTimeout(
      new Promise((resolve) => {
        const check = () => {
          const hit = test();
          if (hit) resolve(hit.value);
          return hit !== null;
        };
        if (!check()) this._waiters.push({ check });
      }),
      description,
      ms,
    );
  }
}

/**
 * Records a connection's lifecycle callbacks (onclose, onreconnecting, onreconnected) in order.
 * `until(kind, n)` resolves with the n-th event of that kind once it happened.
 */
export class Lifecycle {
  constructor(connection) {
    this.events = new Collector();
    connection.onclose((error) => this.events.push({ kind: "close", arg: error }));
    connection.onreconnecting((error) => this.events.push({ kind: "reconnecting", arg: error }));
    connection.onreconnected((id) => this.events.push({ kind: "reconnected", arg: id }));
  }

  count(kind) {
    return this.events.items.filter((e) => e.kind === kind).length;
  }

  async until(kind, n = 1, ms = GUARD_MS) {
    await this.events.until(() => this.count(kind) >= n, `${kind} event #${n}`, ms);
    return this.events.items.filter((e) => e.kind === kind)[n - 1];
  }
}

/**
 * Subscribes to a server stream (IStreamResult). `items` collects the items as they arrive; `ended`
 * resolves with all items on completion or rejects with the stream's error; `done` tells whether
 * either happened; `dispose()` cancels the subscription.
 */
export function subscribe(streamResult) {
  const items = new Collector();
  const state = { items, done: false };
  state.ended = new Promise((resolve, reject) => {
    state.subscription = streamResult.subscribe({
      next: (item) => items.push(item),
      complete: () => {
        state.done = true;
        resolve(items.items);
      },
      error: (e) => {
        state.done = true;
        reject(e);
      },
    });
  });
  state.ended.catch(() => {}); // a test that cares awaits `ended` itself
  state.dispose = () => state.subscription.dispose();
  return state;
}

/** Collects a server stream into an array; rejects with the stream's error. */
export function streamToArray(streamResult, what = "stream completion") {
  return withTimeout(subscribe(streamResult).ended, what);
}

/** A promise that resolves after `ms`. Only for tests whose subject is time itself (idle keep-alive). */
export const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
