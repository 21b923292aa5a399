/**
 * Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
 * messages separated by NUL bytes on file descriptors 3 and 4), so a test needs no WebSocket client
 * and no network port: open a page, wait until a JavaScript condition holds, read values, collect
 * every console message, exception and log entry, and take a PNG screenshot, all in one browser run.
 * WebGL runs on SwiftShader (software), which headless Chromium offers without a GPU.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';

export const CHROMIUM = '/usr/bin/chromium';

export interface BrowserMessage {
  /** console.<type> (log, warning, error, ...), 'exception', or 'log:<level>' (network, security, CSP). */
  kind: string;
  text: string;
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

export class PipeBrowser {
  readonly messages: BrowserMessage[] = [];
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private buffer = '';
  private sessionId: string | null = null;
  private stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly profile: string,
  ) {
    const input = child.stdio[4] as Readable;
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => this.receive(chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-20_000);
    });
    child.on('exit', () => {
      for (const { reject } of this.pending.values()) reject(new Error(`chromium exited\n${this.stderr}`));
      this.pending.clear();
    });
  }

  static async launch(options: { width: number; height: number }): Promise<PipeBrowser> {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lesionseg-chromium-'));
    const args = [
      '--headless',
      '--no-sandbox',
      '--remote-debugging-pipe',
      '--use-angle=swiftshader',
      '--enable-unsafe-swiftshader',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      `--window-size=${options.width},${options.height}`,
      '--force-device-scale-factor=1',
      `--user-data-dir=${profile}`,
      'about:blank',
    ];
    const child = spawn('nice', ['-n', '19', CHROMIUM, ...args], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    const browser = new PipeBrowser(child, profile);
    const { targetInfos } = (await browser.send('Target.getTargets')) as { targetInfos: { targetId: string; type: string }[] };
    const page = targetInfos.find((t) => t.type === 'page');
    if (page === undefined) throw new Error('chromium opened no page');
    const attached = (await browser.send('Target.attachToTarget', { targetId: page.targetId, flatten: true })) as { sessionId: string };
    browser.sessionId = attached.sessionId;
    await browser.send('Runtime.enable');
    await browser.send('Log.enable');
    await browser.send('Page.enable');
    // The window size includes the (invisible) browser frame; pin the page's viewport itself.
    await browser.send('Emulation.setDeviceMetricsOverride', { width: options.width, height: options.height, deviceScaleFactor: 1, mobile: false });
    return browser;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\0')) >= 0) {
      const message = JSON.parse(this.buffer.slice(0, end)) as { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string } };
      this.buffer = this.buffer.slice(end + 1);
      if (message.id !== undefined) {
        const waiting = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) waiting?.reject(new Error(`DevTools: ${message.error.message}`));
        else waiting?.resolve(message.result ?? {});
      } else if (message.method !== undefined) {
        this.event(message.method, message.params ?? {});
      }
    }
  }

  private event(method: string, params: Record<string, unknown>): void {
    if (method === 'Runtime.consoleAPICalled') {
      const args = (params.args as { value?: unknown; description?: string }[]) ?? [];
      this.messages.push({ kind: `console.${String(params.type)}`, text: args.map((a) => (a.value !== undefined ? String(a.value) : (a.description ?? ''))).join(' ') });
    } else if (method === 'Runtime.exceptionThrown') {
      const details = params.exceptionDetails as { text?: string; exception?: { description?: string } };
      this.messages.push({ kind: 'exception', text: `${details.text ?? ''} ${details.exception?.description ?? ''}`.trim() });
    } else if (method === 'Log.entryAdded') {
      const entry = params.entry as { level: string; text: string; url?: string };
      this.messages.push({ kind: `log:${entry.level}`, text: `${entry.text}${entry.url ? ` (${entry.url})` : ''}` });
    }
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const output = this.child.stdio[3] as Writable;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      output.write(`${JSON.stringify({ id, method, params, ...(this.sessionId !== null && !method.startsWith('Target.') && !method.startsWith('Browser.') ? { sessionId: this.sessionId } : {}) })}\0`);
    });
  }

  async open(file: string): Promise<void> {
    await this.send('Page.navigate', { url: pathToFileURL(file).href });
  }

  /** The value of a JavaScript expression in the page. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (result.exceptionDetails) throw new Error(`evaluate ${expression}: ${result.exceptionDetails.text}`);
    return result.result.value;
  }

  /** Poll `expression` until it is truthy (returns its value) or `timeoutMs` passes (throws). */
  async waitFor<T>(expression: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.evaluate<T>(expression).catch(() => undefined);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}; messages: ${JSON.stringify(this.messages)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async screenshot(): Promise<Buffer> {
    const { data } = (await this.send('Page.captureScreenshot', { format: 'png' })) as { data: string };
    return Buffer.from(data, 'base64');
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (this.child.exitCode !== null) resolve();
      else this.child.once('exit', () => resolve());
    });
    await this.send('Browser.close').catch(() => undefined);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}
