/**
 * The CLI in its user's words: the library's argument errors name API options (`targets.topK`,
 * `guidedRelu6`, `see layers()`); a CLI user typed flags. One map from API option names to the
 * flags that set them, applied once, where the CLI reports an error (main.ts) or a failed input.
 * The error keeps its class and its `code`; only the message changes.
 */

/** API option name (as the library's messages name it) -> the flag that sets it. */
export const API_TO_FLAG: Readonly<Record<string, string>> = {
  method: '--method',
  layer: '--layer',
  layers: '--layer',
  targets: '--class',
  'targets.topK': '--top-k',
  counterfactual: '--counterfactual',
  device: '--device',
  guidedRelu6: '--guided-relu6',
  guided: '--guided',
  augSmooth: '--aug-smooth',
  eigenSmooth: '--eigen-smooth',
  engine: '--engine',
  executionProvider: '--device',
  cache: '--cache-dir',
};

/** camelCase option names that cannot be mistaken for English: replaced wherever they stand. */
const UNAMBIGUOUS = ['targets.topK', 'guidedRelu6', 'augSmooth', 'eigenSmooth'];

/** The message with API option names replaced by the flags a CLI user types. */
export function cliMessage(message: string): string {
  let m = message
    // the sharp-style slot: `Expected ... for <name> but received ...`
    .replace(/ for ([A-Za-z][\w.]*) but received /g, (all, name: string) => (API_TO_FLAG[name] ? ` for ${API_TO_FLAG[name]} but received ` : all))
    .replace(/see layers\(\)/g, "see 'gradcam layers'")
    // a model with a fixed batch size: the batch is what --batch-size and the number of inputs make
    .replace(/ for input\.shape\[0\] but received /g, ' images in a batch (--batch-size, and the number of inputs) but received ')
    // `guidedRelu6: true` in a hint
    .replace(/\b(guidedRelu6|augSmooth|eigenSmooth): true\b/g, (_, name: string) => API_TO_FLAG[name]);
  for (const name of UNAMBIGUOUS) m = m.split(name).join(API_TO_FLAG[name]);
  // `method 'x'` / `for method 'x'` stay: they name the value, which the user typed after --method
  return m;
}

/**
 * The error to show a CLI user: the same error (class, code, stack) with its message in CLI words.
 * Non-errors and messages without API words come back unchanged.
 */
export function inCliWords<E>(e: E): E {
  if (!(e instanceof Error)) return e;
  const translated = cliMessage(e.message);
  if (translated === e.message) return e;
  try {
    e.message = translated;
  } catch {
    // a frozen error: leave it as it is
  }
  return e;
}
