/**
 * The first principal component of a feature map's channels, per image (Eigen-CAM, Eigen-Grad-CAM
 * and eigenSmooth): X = M[n] as an (h·w) x k matrix, each column centred (channel mean over the
 * pixels removed), projection = X·v1 with v1 the top right singular vector.
 *
 * v1 is found by power iteration in float64 on the smaller Gram matrix (XᵀX, k x k, or XXᵀ,
 * hw x hw). Its sign is arbitrary in an SVD (pytorch-grad-cam gets LAPACK's): here it is chosen so
 * that the projection correlates positively with the channel sum of X, i.e. the map points where
 * the (centred) activations are large. Non-finite values count as 0, as in pytorch-grad-cam.
 */
import type { FeatureShape } from '../kernels/types';

const MAX_ITERATIONS = 2000;
const TOLERANCE = 1e-12;

/** [n*h*w] the projection of each image of M (shape `s`, either layout). */
export function principalProjection(m: Float32Array, s: FeatureShape): Float32Array {
  const { n, k, h, w } = s;
  const hw = h * w;
  const out = new Float32Array(n * hw);
  const x = new Float64Array(hw * k);
  for (let i = 0; i < n; i++) {
    const base = i * k * hw;
    // X[p, c], row-major, centred per column
    for (let c = 0; c < k; c++) {
      let mean = 0;
      for (let p = 0; p < hw; p++) {
        const v = s.layout === 'nchw' ? m[base + c * hw + p] : m[base + p * k + c];
        const f = Number.isFinite(v) ? v : 0;
        x[p * k + c] = f;
        mean += f;
      }
      mean /= hw;
      for (let p = 0; p < hw; p++) x[p * k + c] -= mean;
    }
    const proj = projectRows(x, hw, k);
    for (let p = 0; p < hw; p++) out[i * hw + p] = proj[p];
  }
  return out;
}

/** X·v1 for a row-major rows x cols matrix. */
function projectRows(x: Float64Array, rows: number, cols: number): Float64Array {
  const useCols = cols <= rows;
  const m = useCols ? cols : rows;
  // Gram matrix G = XᵀX (cols x cols) or XXᵀ (rows x rows)
  const g = new Float64Array(m * m);
  if (useCols) {
    for (let p = 0; p < rows; p++) {
      const r = p * cols;
      for (let a = 0; a < cols; a++) {
        const va = x[r + a];
        if (va === 0) continue;
        const ga = a * m;
        for (let b = a; b < cols; b++) g[ga + b] += va * x[r + b];
      }
    }
  } else {
    for (let a = 0; a < rows; a++) {
      for (let b = a; b < rows; b++) {
        let sum = 0;
        for (let c = 0; c < cols; c++) sum += x[a * cols + c] * x[b * cols + c];
        g[a * m + b] = sum;
      }
    }
  }
  for (let a = 0; a < m; a++) for (let b = 0; b < a; b++) g[a * m + b] = g[b * m + a];
  // power iteration from the column of largest norm (never orthogonal to the top eigenvector in practice)
  let v = new Float64Array(m);
  let best = -1;
  for (let a = 0; a < m; a++) {
    if (g[a * m + a] > best) {
      best = g[a * m + a];
      for (let b = 0; b < m; b++) v[b] = g[a * m + b];
    }
  }
  const result = new Float64Array(rows);
  if (!(normalize(v) > 0)) return result; // X = 0: no component
  let lambda = 0;
  let next = new Float64Array(m);
  for (let it = 0; it < MAX_ITERATIONS; it++) {
    for (let a = 0; a < m; a++) {
      let sum = 0;
      const ga = a * m;
      for (let b = 0; b < m; b++) sum += g[ga + b] * v[b];
      next[a] = sum;
    }
    const l = normalize(next);
    [v, next] = [next, v];
    if (Math.abs(l - lambda) <= TOLERANCE * l) break;
    lambda = l;
  }
  // v1 (cols) directly, or from the left vector u1: v1 ∝ Xᵀu1
  let v1: Float64Array;
  if (useCols) v1 = v;
  else {
    v1 = new Float64Array(cols);
    for (let p = 0; p < rows; p++) for (let c = 0; c < cols; c++) v1[c] += x[p * cols + c] * v[p];
    normalize(v1);
  }
  let corr = 0;
  for (let p = 0; p < rows; p++) {
    let dot = 0;
    let sum = 0;
    for (let c = 0; c < cols; c++) {
      dot += x[p * cols + c] * v1[c];
      sum += x[p * cols + c];
    }
    result[p] = dot;
    corr += dot * sum;
  }
  if (corr < 0) for (let p = 0; p < rows; p++) result[p] = -result[p];
  return result;
}

function normalize(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
  return norm;
}
