#!/usr/bin/env node
/**
 * The `gradcam` command: explain, layers, demo. Usage mistakes print one line and exit 2;
 * failures print one line and exit 1 (the stack trace only with --verbose); Ctrl-C exits 130.
 * stdout carries only our output (the --json document or the summary): library chatter
 * (console.log/info/warn) is sent to stderr.
 */
import { HELP, parseDemoArgs, parseExplainArgs, parseLayersArgs, UsageError } from './args';
import { skippedInputs } from './inputs';
import { cliMessage, inCliWords } from './words';

function redirectConsole(): void {
  const toErr = (...args: unknown[]) => process.stderr.write(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ') + '\n');
  console.log = toErr;
  console.info = toErr;
}

function out(line: string): void {
  process.stdout.write(line + '\n');
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const verbose = rest.includes('--verbose') || rest.includes('-v');
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      out(HELP.main);
      return command === undefined ? 2 : 0;
    }
    if (command === '--version') {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      out(require('../../../package.json').version);
      return 0;
    }
    redirectConsole();
    if (command === 'explain') {
      const a = parseExplainArgs(rest);
      if (a.help) {
        out(HELP.explain);
        return 0;
      }
      // an ONNX model's worker thread starts before the rest of the library loads (lib/onnx/prestart.ts)
      if (a.model.toLowerCase().endsWith('.onnx')) (await import('../onnx/prestart')).prestartWorkers(1);
      const { runExplain, summarize } = await import('./explain');
      const log = (l: string) => process.stderr.write(cliMessage(l) + '\n');
      // files of the input folders that are not pictures: named, then left out
      const skipped = skippedInputs(a.inputs);
      if (!a.quiet) for (const s of skipped) log(`gradcam: skipped ${s.input}: ${s.reason}`);
      const { report, exitCode } = await runExplain(a, log);
      for (const f of report.failures) f.error = cliMessage(f.error);
      // runExplain names the first failure; every other one is named too (each is a file to look at)
      for (const f of report.failures.slice(1)) log(`gradcam: also failed: ${f.input}: ${f.error}`);
      if (a.json) out(JSON.stringify({ ...report, skipped }, null, 2));
      else if (!a.quiet) summarize(report).forEach(out);
      return exitCode;
    }
    if (command === 'layers') {
      const a = parseLayersArgs(rest);
      if (a.help) {
        out(HELP.layers);
        return 0;
      }
      const { runLayers } = await import('./layers');
      (await runLayers(a)).forEach(out);
      return 0;
    }
    if (command === 'demo') {
      const a = parseDemoArgs(rest);
      if (a.help) {
        out(HELP.demo);
        return 0;
      }
      const { runDemo } = await import('./demo');
      return await runDemo(a);
    }
    throw new UsageError(`unknown command '${command}' (expected explain, layers or demo; see gradcam --help)`);
  } catch (e) {
    // the library's argument errors name API options: the user typed flags
    const err = inCliWords(e) as Error;
    const first = String(err?.message ?? err).split('\n')[0];
    if (err instanceof UsageError) {
      process.stderr.write(`gradcam: ${first}\n`);
      if (verbose && err.stack) process.stderr.write(err.stack + '\n');
      return 2;
    }
    process.stderr.write(`gradcam: error: ${first}\n`);
    if (verbose && err?.stack) process.stderr.write(err.stack + '\n');
    return 1;
  }
}

/**
 * Resolves once everything written to `stream` so far has reached the OS (or the reader went away).
 * process.exit() does not wait for a pipe: a `--json | consumer` reader that is slower than us
 * would get only the first 64 KiB (the pipe's buffer).
 */
export function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    const done = () => {
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('error', done);
    stream.on('close', done);
    // writes complete in order: the callback of an empty write runs after every earlier one
    stream.write('', done);
  });
}

/** Sets the exit code, waits for stdout and stderr to drain, then exits (engines' threads must not keep us alive). */
export async function exitAfterFlush(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

if (require.main === module) {
  // a reader that closes the pipe early (`gradcam ... --json | head`) is not an error of ours
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  main(process.argv.slice(2)).then(
    (code) => exitAfterFlush(code),
    (e) => {
      process.stderr.write(`gradcam: error: ${String((e as Error)?.message ?? e).split('\n')[0]}\n`);
      return exitAfterFlush(1);
    },
  );
}
