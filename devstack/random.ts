/** mulberry32: small, seeded and fast, so that a benchmark's inputs are the same on every run. */
export function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box-Muller); 1 - u keeps the logarithm's argument in (0, 1]. */
export function normal(u: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

/** A Pareto draw with scale `xm` and shape `alpha` (inverse CDF). */
export function pareto(u: () => number, xm: number, alpha: number): number {
  return xm / (1 - u()) ** (1 / alpha);
}
