// Wraps the official client's protocol (JSON or MessagePack) to record every message the client
// parsed from the hub, so a test can check what the hub sent that the public API hides (pings,
// completions of cancelled streams).
import { Collector } from "./waiting.mjs";

export class RecordingProtocol {
  constructor(inner) {
    this._inner = inner;
    this.name = inner.name;
    this.version = inner.version;
    this.transferFormat = inner.transferFormat;
    /** Every parsed incoming hub message, in arrival order. */
    this.received = new Collector();
  }

  parseMessages(input, logger) {
    const messages = this._inner.parseMessages(input, logger);
    for (const message of messages) this.received.push(message);
    return messages;
  }

  writeMessage(message) {
    return this._inner.writeMessage(message);
  }
}
