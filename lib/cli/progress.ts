/** A one-line progress bar on stderr, drawn only on a terminal and only for more than a few items. */
export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private readonly enabled: boolean;
  private lastDraw = 0;

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    enabled?: boolean,
  ) {
    this.enabled = enabled ?? (Boolean(stream.isTTY) && total > 4);
  }

  tick(n = 1): void {
    this.done += n;
    if (!this.enabled) return;
    const now = Date.now();
    if (this.done < this.total && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const width = 24;
    const filled = Math.round((width * this.done) / this.total);
    const secs = (now - this.started) / 1000;
    const rate = secs > 0 ? this.done / secs : 0;
    const eta = rate > 0 ? Math.max(0, (this.total - this.done) / rate) : 0;
    const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${this.done}/${this.total} ${this.label}  ${rate.toFixed(1)}/s  eta ${eta.toFixed(0)}s`;
    this.stream.write(`\r${line}\x1b[K`);
  }

  finish(): void {
    if (this.enabled) this.stream.write('\n');
  }
}
