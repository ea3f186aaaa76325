// Progress bars for long work (cli-progress). Quiet when stderr is not a terminal or in CI, where a
// line per `logEvery` updates is printed instead, so that logs stay readable.
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, payload?: Record<string, string | number>): void;
  stop(): void;
}

export function progress(label: string, total: number, opts: { unit?: string; logEvery?: number } = {}): Progress {
  const unit = opts.unit ?? 'items';
  const interactive = process.stderr.isTTY && !process.env.CI && !process.env.VITEST;
  if (interactive) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} |{bar}| {value}/{total} ${unit} | {rate} | ETA {eta_formatted} {extra}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: '', extra: '' });
    return {
      update: (done, payload = {}) => {
        const { rate = '', ...rest } = payload;
        bar.update(done, { rate, extra: Object.entries(rest).map(([k, v]) => `${k} ${v}`).join(' ') });
      },
      stop: () => bar.stop(),
    };
  }
  const start = Date.now();
  let last = 0;
  const every = opts.logEvery ?? 0;
  return {
    update: (done, payload = {}) => {
      if (process.env.VITEST || every <= 0) return;
      if (done - last < every && done < total) return;
      last = done;
      const s = (Date.now() - start) / 1000;
      const eta = done > 0 ? ((total - done) * s) / done : 0;
      const extra = Object.entries(payload).map(([k, v]) => `${k} ${v}`).join(' ');
      process.stderr.write(`${label}: ${done}/${total} ${unit} ${extra} (${s.toFixed(0)} s, ETA ${eta.toFixed(0)} s)\n`);
    },
    stop: () => {},
  };
}
