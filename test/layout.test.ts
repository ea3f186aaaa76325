// The folders are layers and imports point only down them: scripts -> {pipeline, theory} -> figures -> datasets
// -> models -> util. A folder may import itself; pipeline and theory share a level and neither imports the other
// (both draw with figures/).
// Read from the source text of every .ts file, so an upward import, an import cycle, or onnxruntime reaching
// the gradient rule table fails here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT as ROOT } from './helpers/shared.js';

/** Bottom first: a file may import from its own folder or from a level listed before its own. */
const LEVELS = [['util'], ['models'], ['datasets'], ['figures'], ['pipeline', 'theory'], ['scripts']] as const;
const FOLDERS: readonly string[] = LEVELS.flat();

interface Import {
  spec: string;
  /** `import type` / `export type`, or braces that name only `type X` specifiers: erased at run time. */
  typeOnly: boolean;
}

// Static imports and re-exports start a line in this code base; dynamic imports may appear anywhere.
const IMPORT = /^(?:import|export)\s+(type\s+)?([^'";]*?)\s*from\s*'([^']+)'|^import\s+'([^']+)'|\bimport\(\s*'([^']+)'\s*\)/gm;

function importsOf(src: string): Import[] {
  return [...src.matchAll(IMPORT)].map((m) => {
    if (m[3] === undefined) return { spec: (m[4] ?? m[5])!, typeOnly: false };
    const braces = /^\{([^}]*)\}$/.exec(m[2]!.trim());
    const names = braces ? braces[1]!.split(',').map((s) => s.trim()).filter(Boolean) : [];
    return { spec: m[3], typeOnly: m[1] !== undefined || (names.length > 0 && names.every((n) => n.startsWith('type '))) };
  });
}

interface Edge extends Import {
  /** The imported file relative to the root (relative specifiers), or null for a package. */
  target: string | null;
}

/** file (relative to the root, `/`-separated) -> its imports. */
type ImportGraph = Map<string, Edge[]>;

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const rel = (abs: string): string => relative(ROOT, abs).split(sep).join('/');

function graphOf(sources: Map<string, string>): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const [file, src] of sources)
    graph.set(
      file,
      importsOf(src).map((i) => ({
        ...i,
        target: i.spec.startsWith('.') ? rel(resolve(ROOT, dirname(file), i.spec.replace(/\.js$/, '.ts'))) : null,
      })),
    );
  return graph;
}

function readGraph(): ImportGraph {
  const sources = new Map<string, string>();
  for (const folder of FOLDERS) for (const f of tsFiles(join(ROOT, folder))) sources.set(rel(f), readFileSync(f, 'utf8'));
  return graphOf(sources);
}

const folderOf = (file: string): string => file.split('/')[0]!;
/** A file's level, or -1 outside the layers (test/, say). */
const levelOf = (file: string): number => LEVELS.findIndex((level) => (level as readonly string[]).includes(folderOf(file)));

/** A file may import its own folder, or a folder of a lower level (a sibling on the same level is not lower). */
const allowed = (file: string, target: string): boolean =>
  levelOf(target) >= 0 && (folderOf(target) === folderOf(file) || levelOf(target) < levelOf(file));

/** Every import that points up a level, sideways to a sibling folder, or out of the layers (into test/, say). */
function upwardImports(graph: ImportGraph): string[] {
  const bad: string[] = [];
  for (const [file, edges] of graph) for (const e of edges) if (e.target !== null && !allowed(file, e.target)) bad.push(`${file} -> ${e.target}`);
  return bad;
}

/** Imports whose file does not exist (the graph would silently miss what lies behind them). */
function unresolved(graph: ImportGraph): string[] {
  return [...graph].flatMap(([file, edges]) => edges.filter((e) => e.target !== null && levelOf(e.target) >= 0 && !graph.has(e.target)).map((e) => `${file} -> ${e.spec}`));
}

/** One cycle per group of files that import each other (depth-first search, grey = on the current path). */
function importCycles(graph: ImportGraph): string[][] {
  const state = new Map<string, 'grey' | 'black'>();
  const path: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    state.set(file, 'grey');
    path.push(file);
    for (const e of graph.get(file) ?? []) {
      if (e.target === null || !graph.has(e.target)) continue;
      const s = state.get(e.target);
      if (s === 'grey') cycles.push([...path.slice(path.indexOf(e.target)), e.target]);
      else if (s === undefined) visit(e.target);
    }
    path.pop();
    state.set(file, 'black');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

/** The packages a file loads at run time, directly or through the files it imports (type-only imports skipped). */
function runtimePackages(graph: ImportGraph, file: string): Map<string, string[]> {
  const found = new Map<string, string[]>(); // package -> the import chain that reaches it
  const seen = new Set([file]);
  const queue: string[][] = [[file]];
  while (queue.length > 0) {
    const chain = queue.shift()!;
    for (const e of graph.get(chain.at(-1)!) ?? []) {
      if (e.typeOnly) continue;
      if (e.target === null) {
        if (!found.has(e.spec)) found.set(e.spec, chain);
      } else if (!seen.has(e.target)) {
        seen.add(e.target);
        queue.push([...chain, e.target]);
      }
    }
  }
  return found;
}

describe('layout', () => {
  const graph = readGraph();

  it('reads every import of the source tree', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('models/grad/rules.ts')!.map((e) => e.target)).toContain('models/onnx/proto.ts');
    expect(unresolved(graph)).toEqual([]);
  });

  it('imports point only down the layers', () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  it('has no import cycles', () => {
    expect(importCycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('the gradient rule table does not load onnxruntime', () => {
    const pkgs = runtimePackages(graph, 'models/grad/rules.ts');
    expect([...pkgs.keys()].filter((p) => p.startsWith('onnxruntime')).map((p) => `${pkgs.get(p)!.join(' -> ')} -> ${p}`)).toEqual([]);
    // ...while the folding of static shapes, which runs sessions, does.
    expect(runtimePackages(graph, 'models/grad/static.ts').has('onnxruntime-node')).toBe(true);
  });
});

describe('the layout checks themselves', () => {
  const fake = (files: Record<string, string>) => graphOf(new Map(Object.entries(files)));

  it('find every kind of import, and tell type-only ones', () => {
    const src = [
      "import { a,\n  b } from './a.js';",
      "import type { C } from '../c.js';",
      "import { type D, type E } from './d.js';",
      "import { type F, g } from './f.js';",
      "export { h } from './h.js';",
      "export type { I } from './i.js';",
      "import './side-effect.js';",
      "import * as ort from 'onnxruntime-node';",
      "const m = await import('./lazy.js');",
      "// import { x } from './commented.js' is not a statement",
    ].join('\n');
    expect(importsOf(src)).toEqual([
      { spec: './a.js', typeOnly: false },
      { spec: '../c.js', typeOnly: true },
      { spec: './d.js', typeOnly: true },
      { spec: './f.js', typeOnly: false },
      { spec: './h.js', typeOnly: false },
      { spec: './i.js', typeOnly: true },
      { spec: './side-effect.js', typeOnly: false },
      { spec: 'onnxruntime-node', typeOnly: false },
      { spec: './lazy.js', typeOnly: false },
    ]);
  });

  it('report an upward import, an import into test/, a cycle, and a package behind a chain', () => {
    const g = fake({
      'models/a.ts': "import { b } from '../pipeline/b.js';\nimport { t } from '../test/t.js';",
      'pipeline/b.ts': "import { a } from '../models/a.js';\nimport type { X } from 'heavy';",
      'util/c.ts': "import * as ort from 'onnxruntime-node';",
      'util/d.ts': "import { c } from './c.js';",
    });
    expect(upwardImports(g)).toEqual(['models/a.ts -> pipeline/b.ts', 'models/a.ts -> test/t.ts']);
    expect(importCycles(g)).toEqual([['models/a.ts', 'pipeline/b.ts', 'models/a.ts']]);
    expect([...runtimePackages(g, 'util/d.ts')]).toEqual([['onnxruntime-node', ['util/d.ts', 'util/c.ts']]]);
    expect([...runtimePackages(g, 'models/a.ts').keys()]).toEqual([]); // `import type` loads nothing
  });

  it('report an import between the siblings theory and pipeline, either way, but not one down to figures', () => {
    const down = "import { p } from '../figures/p.js';";
    const siblings = fake({ 'theory/a.ts': `import { b } from '../pipeline/b.js';\n${down}`, 'pipeline/b.ts': `import { a } from '../theory/a.js';\n${down}` });
    expect(upwardImports(siblings)).toEqual(['theory/a.ts -> pipeline/b.ts', 'pipeline/b.ts -> theory/a.ts']);
  });
});
