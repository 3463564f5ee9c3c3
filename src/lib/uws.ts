import uWS from 'uWebSockets.js';

/** Listens and resolves with the listen socket and the port bound (port 0: a free one). */
export function listen(
  app: uWS.TemplatedApp,
  host: string,
  port: number,
): Promise<{ socket: uWS.us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket) => {
      if (socket === false) reject(new Error(`cannot listen on ${host}:${port}`));
      else resolve({ socket, port: uWS.us_socket_local_port(socket) });
    });
  });
}
