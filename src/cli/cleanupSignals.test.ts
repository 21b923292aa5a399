/**
 * Ctrl-C while a file is being written: the temporary file in progress is removed and the process
 * ends by SIGINT (status 130 in a shell), the target never appears. First a child writing 1 MiB
 * slowly (1 KiB per write call, through the writer's test seam) and interrupted once its temporary
 * file exists; then `lesionseg synth` interrupted mid-dataset: no `*.tmp-*` left in either.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI, ROOT } from './test-support.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'signals-test-'));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const leftovers = (dir: string): string[] => fs.readdirSync(dir, { recursive: true }).map(String).filter((name) => name.includes('.tmp-'));
const source = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

/** Start `node ...args` (a .ts script runs through tsx); resolves with the exit code/signal and the output once it ends. */
function start(args: string[], onStdout: (text: string, child: ReturnType<typeof spawn>) => void) {
  const child = spawn(process.execPath, /\.[cm]?ts$/.test(args[0] ?? '') ? ['--import', 'tsx', ...args] : args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk; onStdout(stdout, child); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk; });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

test('SIGINT during an atomic write: the temporary file is removed, the target never appears, the process ends by SIGINT', async () => {
  const dir = path.join(tmp, 'slow');
  fs.mkdirSync(dir);
  const target = path.join(dir, 'mask.nii');
  const script = path.join(tmp, 'slow-writer.mts');
  fs.writeFileSync(script, [
    `import { removeTemporaryFilesOnSignals } from ${JSON.stringify(source('./cleanupSignals.ts'))};`,
    `import { atomicWriteFile, withWriteCalls } from ${JSON.stringify(source('../core/index.ts'))};`,
    'removeTemporaryFilesOnSignals();',
    'let announced = false;',
    'await withWriteCalls({ write: async (handle, buffer, offset, length) => {',
    '  const written = (await handle.write(buffer, offset, Math.min(length, 1024))).bytesWritten;',
    "  if (!announced) { announced = true; process.stdout.write('writing\\n'); }",
    '  await new Promise((resolve) => setTimeout(resolve, 5));',
    '  return written;',
    `} }, () => atomicWriteFile(${JSON.stringify(target)}, new Uint8Array(1 << 20)));`,
    "process.stdout.write('finished\\n');",
  ].join('\n'));
  let sawTemporary: string[] = [];
  const result = await start([script], (text, child) => {
    if (text.includes('writing') && sawTemporary.length === 0) {
      sawTemporary = leftovers(dir);
      child.kill('SIGINT');
    }
  }).done;
  assert.equal(sawTemporary.length, 1, 'a temporary file existed when SIGINT was sent');
  assert.equal(result.signal, 'SIGINT', `ended by SIGINT (code ${result.code}): ${result.stderr}`);
  assert.match(result.stderr, /lesionseg: SIGINT: stopped; removed 1 temporary file\(s\)/);
  assert.equal(result.stdout.includes('finished'), false);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('lesionseg synth interrupted by SIGINT mid-dataset: ends by SIGINT, no *.tmp-* left', async () => {
  const out = path.join(tmp, 'synth');
  let sent = false;
  const first = path.join(out, 'imagesTr', 'covid_000_0000.nii.gz');
  const running = start([...CLI, 'synth', '--kind', 'covid', '--cases', '6', '--size', 'tiny', '--out', out], () => undefined);
  // Once the first case's image is written, interrupt during the next ones.
  const poll = setInterval(() => {
    if (!sent && fs.existsSync(first)) {
      sent = true;
      running.child.kill('SIGINT');
    }
  }, 5);
  const result = await running.done;
  clearInterval(poll);
  assert.ok(sent, `the first image never appeared: ${result.stderr}`);
  assert.equal(result.signal, 'SIGINT', `ended by SIGINT (code ${result.code}): ${result.stderr}`);
  assert.match(result.stderr, /lesionseg: SIGINT: stopped/);
  assert.deepEqual(leftovers(out), []);
});
