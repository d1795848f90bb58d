import net from 'node:net';

/** Asks the kernel for a free TCP port on the loopback interface. */
export async function free_port(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('no port from the kernel'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Resolves when something accepts TCP connections on host:port, or rejects after timeout_ms. */
export async function wait_for_port(host: string, port: number, timeout_ms: number): Promise<void> {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeout_ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
