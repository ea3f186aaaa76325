// Standard normal variates by the ziggurat method (Marsaglia and Tsang, 2000, 128 layers), driven by the
// project's seeded Rng. About 99% of draws cost one uint32 and one multiply, against two uniforms, a log,
// a sqrt and a sin/cos per pair for Box-Muller: the Gaussian model draws 10^8 of them.
import type { Rng } from '../util/rng.js';

const LAYERS = 128;
const R = 3.442619855899; // start of the tail
const V = 9.91256303526217e-3; // area of each layer
const M1 = 2147483648; // 2^31

const KN = new Uint32Array(LAYERS);
const WN = new Float64Array(LAYERS);
const FN = new Float64Array(LAYERS);
{
  let dn = R;
  let tn = dn;
  const q = V / Math.exp(-0.5 * dn * dn);
  KN[0] = Math.floor((dn / q) * M1);
  KN[1] = 0;
  WN[0] = q / M1;
  WN[LAYERS - 1] = dn / M1;
  FN[0] = 1;
  FN[LAYERS - 1] = Math.exp(-0.5 * dn * dn);
  for (let i = LAYERS - 2; i >= 1; i--) {
    dn = Math.sqrt(-2 * Math.log(V / dn + Math.exp(-0.5 * dn * dn)));
    KN[i + 1] = Math.floor((dn / tn) * M1);
    tn = dn;
    FN[i] = Math.exp(-0.5 * dn * dn);
    WN[i] = dn / M1;
  }
}

/** One standard normal variate. */
export function zigguratNormal(rng: Rng): number {
  for (;;) {
    const hz = rng.nextU32() | 0; // signed: the sign of the variate
    const iz = hz & (LAYERS - 1);
    const ahz = hz < 0 ? -hz : hz;
    const x = hz * WN[iz]!;
    if (ahz < KN[iz]!) return x; // inside the layer's rectangle: accepted at once
    if (iz === 0) {
      // The tail beyond R (Marsaglia, 1964).
      let t: number;
      let y: number;
      do {
        t = -Math.log(1 - rng.next()) / R;
        y = -Math.log(1 - rng.next());
      } while (y + y < t * t);
      return hz > 0 ? R + t : -R - t;
    }
    // The wedge between rectangle and curve: accept under the density, else draw again.
    if (FN[iz]! + rng.next() * (FN[iz - 1]! - FN[iz]!) < Math.exp(-0.5 * x * x)) return x;
  }
}
