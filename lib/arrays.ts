/** Small typed-array helpers shared by the adapters, the CLI and the tests. */

/** The arrays one after another in a new Float32Array (the array itself when there is only one). */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
