/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the `--nproc` launcher's rendezvous, and the
 * servers tests start (the data-parallel tests' rendezvous, Orthanc for the DICOMweb tests). Another
 * process may take it before it is used; callers that bind it themselves retry or fail clearly.
 */
import * as net from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
