/**
 * A real Orthanc with its DICOMweb plugin for the tests (Debian `orthanc`, `orthanc-dicomweb`;
 * scripts/setup.sh installs them): started from a JSON configuration in a temporary folder, its
 * storage and index there, HTTP on a free port of 127.0.0.1 only, no DICOM server, a registered user,
 * the plugin at /dicom-web/. One per test file: `startOrthanc()` in a `before`, `stop()` in an
 * `after` (SIGTERM, then SIGKILL after 5 s), which also removes the folder; if the test process dies
 * first, a watchdog stops Orthanc all the same. Never the system's service.
 * Also a small CT instance made in memory, for the servers tests and benchmarks write themselves.
 * Only tests and benchmarks import this file.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../../../core/index.js';
import { encodeDicomSeg } from '../seg.js';

export const ORTHANC = '/usr/sbin/Orthanc';
export const ORTHANC_DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

/** True where Orthanc and its plugin are installed; else skips (fails under CI=true, where a skip is a failure). */
export function orthancAvailable(t: { skip(message: string): void }): boolean {
  if (fs.existsSync(ORTHANC) && fs.existsSync(ORTHANC_DICOMWEB_PLUGIN)) return true;
  const why = 'Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb; scripts/setup.sh)';
  if (process.env.CI === 'true') assert.fail(why);
  t.skip(why);
  return false;
}

export interface RunningOrthanc {
  /** The DICOMweb base URL: http://127.0.0.1:PORT/dicom-web */
  readonly dicomweb: string;
  /** Orthanc's own REST API root: http://127.0.0.1:PORT */
  readonly rest: string;
  readonly user: string;
  readonly password: string;
  /** Orthanc's log so far (for a failing test's message). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Orthanc under a watchdog: bash starts it (niced, so the test's own work comes first), and a
 * background reader of the pipe from the test process stops it (SIGTERM, SIGKILL 5 s later) when
 * that pipe closes: at stop(), or when the test process dies, even by SIGKILL, so no Orthanc
 * outlives its test file. bash exits with Orthanc's status, which the start-up loop watches.
 */
const WATCHDOG = `exec 3<&0
nice -n 10 "$0" "$1" &
orthanc=$!
{ read -r _ <&3; kill -TERM $orthanc 2>/dev/null
  for i in $(seq 50); do kill -0 $orthanc 2>/dev/null || exit 0; sleep 0.1; done
  kill -KILL $orthanc 2>/dev/null; } 0<&3 >/dev/null 2>&1 &
exec 3<&-
wait $orthanc`;

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Start an Orthanc and wait (at most 20 s) until its REST API answers the registered user. */
export async function startOrthanc(options: { user?: string; password?: string } = {}): Promise<RunningOrthanc> {
  const user = options.user ?? 'lesionseg';
  const password = options.password ?? `pw-${process.pid}-${Date.now().toString(36)}`;
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-orthanc-'));
  const port = await freePort();
  const config = {
    Name: 'lesionseg-test',
    StorageDirectory: path.join(folder, 'storage'),
    IndexDirectory: path.join(folder, 'index'),
    HttpPort: port,
    DicomServerEnabled: false,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: true,
    RegisteredUsers: { [user]: password },
    Plugins: [ORTHANC_DICOMWEB_PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/' },
    ConcurrentJobs: 1,
    HttpThreadsCount: 4,
    StableAge: 1,
  };
  const configFile = path.join(folder, 'orthanc.json');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  const logFile = path.join(folder, 'orthanc.log');
  const logFd = fs.openSync(logFile, 'w');
  const child = spawn('bash', ['-c', WATCHDOG, ORTHANC, configFile], { stdio: ['pipe', logFd, logFd] });
  fs.closeSync(logFd);
  const log = (): string => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '');
  const rest = `http://127.0.0.1:${port}`;
  const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      // Closing the pipe makes the watchdog send SIGTERM, then SIGKILL after 5 s; bash ends with Orthanc.
      child.stdin?.end();
      if (!(await waitForExit(child, 8000))) {
        child.kill('SIGKILL');
        await waitForExit(child, 2000);
      }
    }
    fs.rmSync(folder, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = log();
      await stop();
      throw new Error(`Orthanc ended before it answered (status ${child.exitCode ?? child.signalCode}):\n${text.slice(-2000)}`);
    }
    try {
      const response = await fetch(`${rest}/system`, { headers: { authorization }, signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      if (response.status === 200) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      const text = log();
      await stop();
      throw new Error(`Orthanc did not answer on ${rest} within 20 s:\n${text.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { dicomweb: `${rest}/dicom-web`, rest, user, password, log, stop };
}

/** Orthanc's REST API as the registered user (to check what it stores, apart from DICOMweb). */
export async function orthancRest(orthanc: RunningOrthanc, route: string): Promise<unknown> {
  const response = await fetch(`${orthanc.rest}${route}`, { headers: { authorization: `Basic ${Buffer.from(`${orthanc.user}:${orthanc.password}`).toString('base64')}` } });
  assert.equal(response.status, 200, `GET ${route}: HTTP ${response.status}`);
  return response.json();
}

/**
 * A CT Image Storage instance (explicit VR little endian, dcmjs) of a `side` x `side` int16 image
 * whose pixel i is i * `scale` (wrapping at 16 bits), with the UIDs given.
 */
export function ctInstance(uids: { study: string; series: string; sop: string }, side = 16, scale = 1): Buffer {
  const pixels = new Int16Array(side * side).map((_, i) => i * scale);
  return Buffer.from(
    encodeDicomSeg({
      SOPClassUID: '1.2.840.10008.5.1.4.1.1.2',
      SOPInstanceUID: uids.sop,
      StudyInstanceUID: uids.study,
      SeriesInstanceUID: uids.series,
      Modality: 'CT',
      Rows: side,
      Columns: side,
      BitsAllocated: 16,
      BitsStored: 16,
      HighBit: 15,
      PixelRepresentation: 1,
      SamplesPerPixel: 1,
      PhotometricInterpretation: 'MONOCHROME2',
      PixelData: pixels.buffer,
      _vrMap: { PixelData: 'OW' },
    }),
  );
}
