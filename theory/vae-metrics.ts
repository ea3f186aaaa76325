// What the VAE experiment measures on each generation's samples: the spread of their latent means under the
// ORIGINAL encoder (trace and log-determinant of the covariance) and their diversity in pixel space.

/** Sample covariance (n - 1 denominator) of n rows of d values. */
export function covariance(rows: Float32Array | Float64Array, d: number): Float64Array {
  const n = rows.length / d;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += rows[i * d + j]! / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) {
      const a = rows[i * d + j]! - mean[j]!;
      for (let k = j; k < d; k++) cov[j * d + k]! += a * (rows[i * d + k]! - mean[k]!);
    }
  }
  for (let j = 0; j < d; j++) {
    for (let k = j; k < d; k++) {
      cov[j * d + k] = cov[j * d + k]! / (n - 1);
      cov[k * d + j] = cov[j * d + k]!;
    }
  }
  return cov;
}

export const trace = (m: Float64Array, d: number): number => {
  let s = 0;
  for (let j = 0; j < d; j++) s += m[j * d + j]!;
  return s;
};

/** log det of a symmetric positive-definite matrix by Cholesky; -Infinity when it is singular. */
export function logDet(m: Float64Array, d: number): number {
  const l = new Float64Array(d * d);
  let s = 0;
  for (let j = 0; j < d; j++) {
    let diag = m[j * d + j]!;
    for (let k = 0; k < j; k++) diag -= l[j * d + k]! ** 2;
    if (!(diag > 0)) return -Infinity;
    const ljj = Math.sqrt(diag);
    l[j * d + j] = ljj;
    s += 2 * Math.log(ljj);
    for (let i = j + 1; i < d; i++) {
      let v = m[i * d + j]!;
      for (let k = 0; k < j; k++) v -= l[i * d + k]! * l[j * d + k]!;
      l[i * d + j] = v / ljj;
    }
  }
  return s;
}

/** Mean Euclidean distance over all pairs of n images of `size` pixels. */
export function meanPairwiseDistance(images: Float32Array, size: number): number {
  const n = images.length / size;
  if (n < 2) return 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < size; k++) {
        const t = images[i * size + k]! - images[j * size + k]!;
        s += t * t;
      }
      total += Math.sqrt(s);
    }
  }
  return total / ((n * (n - 1)) / 2);
}

/** Standard deviation of all values (the notebook prints it for the flattened latent means). */
export function std(values: Float32Array): number {
  let m = 0;
  for (const v of values) m += v / values.length;
  let s = 0;
  for (const v of values) s += (v - m) ** 2;
  return Math.sqrt(s / Math.max(1, values.length - 1));
}

/** Summary of the latent means [n, d] of one generation's samples under the original encoder. */
export function latentSpread(mu: Float32Array, d: number): { trace: number; logDet: number; std: number } {
  const cov = covariance(mu, d);
  return { trace: trace(cov, d), logDet: logDet(cov, d), std: std(mu) };
}

/**
 * The k leading eigenvectors of a symmetric positive semi-definite d x d matrix (power iteration with
 * deflation; deterministic start), with their eigenvalues. Signs are fixed so the largest entry is positive.
 */
export function principalAxes(m: Float64Array, d: number, k: number, iterations = 1000): { vectors: Float64Array[]; values: number[] } {
  const a = Float64Array.from(m);
  const vectors: Float64Array[] = [];
  const values: number[] = [];
  for (let c = 0; c < Math.min(k, d); c++) {
    let v = Float64Array.from({ length: d }, (_, i) => 1 + i / d);
    let lambda = 0;
    for (let it = 0; it < iterations; it++) {
      const w = new Float64Array(d);
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) w[i]! += a[i * d + j]! * v[j]!;
      const norm = Math.hypot(...w);
      if (norm === 0) break;
      lambda = norm;
      v = w.map((x) => x / norm);
    }
    let big = 0;
    for (let i = 0; i < d; i++) if (Math.abs(v[i]!) > Math.abs(v[big]!)) big = i;
    if (v[big]! < 0) v = v.map((x) => -x);
    vectors.push(v);
    values.push(lambda);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) a[i * d + j]! -= lambda * v[i]! * v[j]!;
  }
  return { vectors, values };
}
