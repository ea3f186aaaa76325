// The reverse walk: visit forward nodes last to first, sum the gradient contributions of each output, apply the
// op's rule, and hand the results to the node's inputs. Only tensors on a path from a parameter get gradients.
import { FLOAT_TYPES, type NodeProto } from '../onnx/proto.js';
import type { GradContext } from './context.js';
import { RULES } from './rules.js';

/** Float tensors that depend on one of `params` (the only ones worth differentiating). */
export function requiresGrad(nodes: readonly NodeProto[], params: Iterable<string>, c: GradContext): Set<string> {
  const req = new Set(params);
  for (const n of nodes) {
    if (!n.input.some((i) => req.has(i))) continue;
    for (const o of n.output) if (o && FLOAT_TYPES.has(c.dtype(o))) req.add(o);
  }
  return req;
}

/**
 * Appends the backward pass of `nodes` to c.g, starting from `seeds` (tensor -> its gradient), and returns the
 * gradient of each of `params` (absent when a parameter does not reach the seeds).
 */
export function backward(nodes: readonly NodeProto[], seeds: Map<string, string>, params: readonly string[], c: GradContext): Map<string, string> {
  const req = requiresGrad(nodes, params, c);
  const parts = new Map<string, string[]>();
  for (const [t, d] of seeds) parts.set(t, [d]);
  const total = (t: string): string | null => {
    const p = parts.get(t);
    if (!p || p.length === 0) return null;
    if (p.length > 1) parts.set(t, [c.g.op('Sum', p)]); // a tensor read by several nodes: sum of contributions
    return parts.get(t)![0]!;
  };
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k]!;
    if (!n.input.some((i) => req.has(i))) continue;
    const dy = n.output.map(total);
    if (dy.every((d) => d === null)) continue;
    const rule = RULES[n.opType];
    if (!rule) throw new Error(`no gradient rule for op ${n.opType} (node ${n.name || '(unnamed)'}); add one to models/grad/rules.ts`);
    const dx = rule(n, dy, c);
    n.input.forEach((x, j) => {
      const d = dx[j];
      if (d && req.has(x)) parts.set(x, [...(parts.get(x) ?? []), d]);
    });
  }
  const grads = new Map<string, string>();
  for (const p of params) {
    const d = total(p);
    if (d) grads.set(p, d);
  }
  return grads;
}
