/**
 * Skipping with a reason: a test (or hook) that cannot run here prints why, once per reason for the
 * whole run (many cases skip for the same missing data), then skips.
 */
const said = new Set<string>();

export function skipBecause(ctx: Mocha.Context, reason: string): never {
  if (!said.has(reason)) {
    said.add(reason);
    console.log(`      (skipped: ${reason})`);
  }
  ctx.skip();
}

/** The one reason the reference tests give when ../shared/reference is missing. */
export const NO_REFERENCE = 'no ../shared/reference beside the repository (or $GRADCAM_SHARED)';
