// Wrappers around the official client's protocols (IHubProtocol is public API): the client uses
// them like any protocol, while a test sees or changes what the protocol alone decides.
import { Collector } from "./waiting.mjs";

/** Delegates everything to an official protocol (JsonHubProtocol or MessagePackHubProtocol). */
class ProtocolWrapper {
  constructor(inner) {
    this._inner = inner;
    this.name = inner.name;
    this.version = inner.version;
    this.transferFormat = inner.transferFormat;
  }

  parseMessages(input, logger) {
    return this._inner.parseMessages(input, logger);
  }

  writeMessage(message) {
    return this._inner.writeMessage(message);
  }
}

/** Records every message the client parsed from the hub, including those the public API hides (pings, completions of cancelled streams). */
export class RecordingProtocol extends ProtocolWrapper {
  constructor(inner) {
    super(inner);
    /** Every parsed incoming hub message, in arrival order. */
    this.received = new Collector();
  }

  parseMessages(input, logger) {
    const messages = super.parseMessages(input, logger);
    for (const message of messages) this.received.push(message);
    return messages;
  }
}

/** Presents an official protocol to the hub under another name and/or version in the handshake. */
export class DisguisedProtocol extends ProtocolWrapper {
  constructor(inner, { name, version }) {
    super(inner);
    if (name !== undefined) this.name = name;
    if (version !== undefined) this.version = version;
  }
}
