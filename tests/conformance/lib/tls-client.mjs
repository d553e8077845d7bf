// Child process of tls.test.mjs: the official client only trusts the hub's self-signed certificate
// through NODE_EXTRA_CA_CERTS, which Node reads at start-up, hence a process of its own.
// Usage: NODE_EXTRA_CA_CERTS=cert.pem node tls-client.mjs https://127.0.0.1:PORT/hub
// Prints one JSON line per transport x protocol pair: {label, echo, transport, protocol} or {label, error}.
import { buildConnection, PAIRS } from "./connections.mjs";
import { withTimeout } from "./waiting.mjs";

const hubUrl = process.argv[2];
for (const pair of PAIRS) {
  const conn = buildConnection(hubUrl, pair);
  try {
    await withTimeout(conn.start(), `start of ${pair.label}`);
    const echo = await conn.invoke("Echo", `over TLS with ${pair.label}`);
    const info = await conn.invoke("GetRequestInfo");
    console.log(JSON.stringify({ label: pair.label, echo, transport: info.transport, protocol: info.protocol }));
  } catch (e) {
    console.log(JSON.stringify({ label: pair.label, error: String(e?.message ?? e) }));
  } finally {
    await conn.stop();
  }
}
