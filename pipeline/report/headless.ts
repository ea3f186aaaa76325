// Opens a page in headless Chromium (Debian's `chromium`) through the Chrome DevTools Protocol over a pipe
// (--remote-debugging-pipe: JSON messages separated by NUL on fds 3 and 4), so no WebSocket library is
// needed. Collects console errors, uncaught exceptions and non-local requests, evaluates an expression in
// the page, and optionally saves a full-page screenshot.
import { spawn } from 'node:child_process';
import { withoutHeapTunables } from '../../util/malloc.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { writeFileAtomic } from '../../util/atomic.js';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** The Chromium binary (CHROMIUM_PATH overrides), or null when none is installed. */
export function findChromium(): string | null {
  const env = process.env.CHROMIUM_PATH;
  if (env) return existsSync(env) ? env : null;
  return CANDIDATES.find((p) => existsSync(p)) ?? null;
}

export interface PageCheck<T> {
  /** Console messages of level error, uncaught exceptions and failed loads. */
  errors: string[];
  /** Requests to anything other than file: and data: URLs (a self-contained page makes none). */
  externalRequests: string[];
  /** Result of `evaluate` in the loaded page. */
  value: T;
}

interface CdpMessage {
  id?: number;
  method?: string;
  sessionId?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
}

class Cdp {
  private nextId = 1;
  private buffer = '';
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  readonly listeners: ((m: CdpMessage) => void)[] = [];

  constructor(private readonly out: Writable, input: Readable) {
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      this.buffer += chunk;
      let k: number;
      while ((k = this.buffer.indexOf('\0')) >= 0) {
        const msg = JSON.parse(this.buffer.slice(0, k)) as CdpMessage;
        this.buffer = this.buffer.slice(k + 1);
        if (msg.id !== undefined && this.pending.has(msg.id)) {
          const p = this.pending.get(msg.id)!;
          this.pending.delete(msg.id);
          if (msg.error) p.reject(new Error(`CDP: ${msg.error.message}`));
          else p.resolve(msg.result ?? {});
        } else for (const l of this.listeners) l(msg);
      }
    });
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    this.out.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

function remoteText(args: unknown): string {
  if (!Array.isArray(args)) return '';
  return args.map((a: { value?: unknown; description?: string }) => (a.value !== undefined ? String(a.value) : (a.description ?? ''))).join(' ');
}

/**
 * Loads `htmlPath`, waits for the load event, evaluates `expression` (which must return a JSON value), and
 * saves a full-page PNG to `screenshot` when given.
 */
export async function checkPage<T>(htmlPath: string, opts: { expression: string; screenshot?: string; width?: number; timeoutMs?: number }): Promise<PageCheck<T>> {
  const chromium = findChromium();
  if (!chromium) throw new Error('chromium is not installed: `apt-get install -y chromium` (Debian), or set CHROMIUM_PATH');
  const profile = mkdtempSync(join(tmpdir(), 'collapse-chromium-'));
  const child = spawn(
    chromium,
    [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', '--remote-debugging-pipe', `--user-data-dir=${profile}`,
      'about:blank',
    ],
    // Its own process group, so that its renderer and helper processes can be ended together.
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true, env: withoutHeapTunables(process.env) },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const cdp = new Cdp(child.stdio[3] as Writable, child.stdio[4] as Readable);
  let closing = false; // set once the check is done and the browser is asked to close
  const exited = new Promise<never>((_, reject) =>
    child.on('exit', (code) => {
      if (closing) return;
      const e = new Error(`chromium exited (code ${code}) before the check finished: ${stderr.trim().slice(-800)}`);
      cdp.failAll(e);
      reject(e);
    }),
  );
  exited.catch(() => {});
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`chromium did not finish loading ${htmlPath} within ${timeoutMs / 1000} s`)), timeoutMs); });
  try {
    return await Promise.race([run(), exited, timeout]);
  } finally {
    clearTimeout(timer);
    // Chromium writes its profile until it has exited: end its process group, wait, then delete the profile.
    const gone = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      child.kill('SIGKILL'); // the group is gone already
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch (e) {
      process.stderr.write(`headless: could not delete the temporary profile ${profile}: ${(e as Error).message}\n`);
    }
  }

  async function run(): Promise<PageCheck<T>> {
    const errors: string[] = [];
    const externalRequests: string[] = [];
    const { targetId } = (await cdp.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await cdp.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
    let loaded: () => void = () => {};
    const loadedP = new Promise<void>((r) => { loaded = r; });
    cdp.listeners.push((m) => {
      if (m.sessionId !== sessionId) return;
      const p = m.params ?? {};
      if (m.method === 'Page.loadEventFired') loaded();
      else if (m.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert')) errors.push(`console.${p.type}: ${remoteText(p.args)}`);
      else if (m.method === 'Runtime.exceptionThrown') {
        const d = p.exceptionDetails as { text?: string; exception?: { description?: string } } | undefined;
        errors.push(`exception: ${d?.exception?.description ?? d?.text ?? 'unknown'}`);
      } else if (m.method === 'Log.entryAdded') {
        const e = p.entry as { level?: string; text?: string; url?: string } | undefined;
        if (e?.level === 'error') errors.push(`log: ${e.text ?? ''}${e.url ? ` (${e.url})` : ''}`);
      } else if (m.method === 'Network.requestWillBeSent') {
        const url = (p.request as { url?: string } | undefined)?.url ?? '';
        if (!/^(file|data|about):/.test(url)) externalRequests.push(url);
      } else if (m.method === 'Network.loadingFailed') errors.push(`failed load: ${String(p.errorText ?? '')}`);
    });
    for (const d of ['Page.enable', 'Runtime.enable', 'Log.enable', 'Network.enable']) await cdp.send(d, {}, sessionId);
    const width = opts.width ?? 1200;
    await cdp.send('Emulation.setDeviceMetricsOverride', { width, height: 900, deviceScaleFactor: 1, mobile: false }, sessionId);
    const nav = (await cdp.send('Page.navigate', { url: pathToFileURL(resolve(htmlPath)).href }, sessionId)) as { errorText?: string };
    if (nav.errorText) throw new Error(`chromium could not open ${htmlPath}: ${nav.errorText}`);
    await loadedP;
    const ev = (await cdp.send('Runtime.evaluate', { expression: opts.expression, returnByValue: true, awaitPromise: true }, sessionId)) as {
      result?: { value?: T };
      exceptionDetails?: { text?: string };
    };
    if (ev.exceptionDetails) throw new Error(`page check expression failed: ${ev.exceptionDetails.text ?? ''}`);
    if (opts.screenshot) {
      const metrics = (await cdp.send('Page.getLayoutMetrics', {}, sessionId)) as { cssContentSize?: { width: number; height: number } };
      const size = metrics.cssContentSize ?? { width, height: 900 };
      const clip = { x: 0, y: 0, width: Math.ceil(size.width), height: Math.ceil(size.height), scale: 1 };
      const shot = (await cdp.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip }, sessionId)) as { data: string };
      writeFileAtomic(opts.screenshot, Buffer.from(shot.data, 'base64'));
    }
    closing = true;
    await cdp.send('Browser.close').catch(() => ({}));
    return { errors, externalRequests, value: ev.result?.value as T };
  }
}

/** Page expression: every <figure data-figure> with its id, whether it holds a drawn SVG, and its size. */
export const FIGURE_CHECK = `Array.from(document.querySelectorAll('figure[data-figure]')).map((f) => {
  const svg = f.querySelector('svg'); const r = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
  return { id: f.dataset.figure, width: r.width, height: r.height, marks: svg ? svg.querySelectorAll('path, rect, line').length : 0 };
})`;
