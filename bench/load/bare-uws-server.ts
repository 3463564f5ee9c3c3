/**
 * The machine's ceiling for the gateway benchmark: a bare uWebSockets.js server on
 * `/ocpp/:id` (subprotocol ocpp1.6) that decodes and JSON.parses every frame and answers
 * `[3, id, {}]` (a BootNotification: Accepted) — no validation, no log, no store. Same socket options as the gateway
 * (src/gateway/server.ts), so the difference between the two is the engine's own work.
 *
 *   node dist/bench/load/bare-uws-server.js [PORT]      (0 or none: any free port)
 *
 * Prints `listening PORT` once it accepts connections; stops on SIGTERM or SIGINT.
 */
import uWS from 'uWebSockets.js';

interface Connection {
  readonly id: string;
}

const requested = Number(process.argv[2] ?? '0');
if (!Number.isInteger(requested) || requested < 0 || requested > 65535) {
  process.stderr.write(`bare-uws-server: bad port ${process.argv[2]}\n`);
  process.exit(2);
}

let connections = 0;
const app = uWS.App().ws<Connection>('/ocpp/:id', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 256 * 1024,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  upgrade: (res, req, context) => {
    // req dies when this callback returns: copy what is needed first.
    const id = req.getParameter(0);
    const offered = req
      .getHeader('sec-websocket-protocol')
      .split(',')
      .map((p) => p.trim());
    if (!offered.includes('ocpp1.6')) {
      res.writeStatus('400 Bad Request').end('no_subprotocol');
      return;
    }
    res.upgrade<Connection>(
      { id },
      req.getHeader('sec-websocket-key'),
      'ocpp1.6',
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: () => {
    connections += 1;
  },
  message: (ws, message) => {
    // The ArrayBuffer dies when this callback returns: decode (copy) it, as the gateway does.
    const frame = JSON.parse(Buffer.from(message).toString('utf8')) as unknown[];
    // A boot is accepted, as the engine accepts the chargers of its network; the rest get {}.
    const payload =
      frame[2] === 'BootNotification'
        ? `{"currentTime":"${new Date().toISOString()}","interval":300,"status":"Accepted"}`
        : '{}';
    ws.send(`[3,${JSON.stringify(frame[1])},${payload}]`, false);
  },
  close: () => {
    connections -= 1;
  },
});
app.any('/*', (res) => {
  res.writeStatus('404 Not Found').end();
});

app.listen('127.0.0.1', requested, (socket) => {
  if (socket === false) {
    process.stderr.write(`bare-uws-server: cannot listen on 127.0.0.1:${requested}\n`);
    process.exit(1);
  }
  const stop = () => {
    uWS.us_listen_socket_close(socket);
    process.stderr.write(`bare-uws-server: stopping with ${connections} connection(s) open\n`);
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`listening ${uWS.us_socket_local_port(socket)}\n`);
});
