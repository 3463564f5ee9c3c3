/**
 * The Node options the engine runs with: in `npm start`, on the bin's first line, and wherever
 * a benchmark, a test or the soak starts `chargestream start`.
 *
 * `--max-semi-space-size=64`: a young generation of two 64 MB semi-spaces instead of V8's
 * 16 MB ones. Under load the event loop makes about 7 KB of garbage a frame, and the workers'
 * results wait a store write on it. A scavenge copies whatever is still alive, so with a
 * quarter as many scavenges less is copied twice. Closed loop, 7 alternating pairs: 3.3 % less
 * engine CPU a stored frame, most of it on V8's helper threads; at half load no difference;
 * about 200 MB more peak RSS (bench/RESULTS.md). V8 reads the size only when it makes an
 * isolate, so it goes on the command line (or in NODE_OPTIONS); the worker threads take the
 * same flag from there.
 */
export const ENGINE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64'];
