/**
 * A one-line progress bar on stderr, redrawn in place on a TTY and silent otherwise (so logs and
 * pipes get only the per-file result lines).
 */
import { formatBytes } from "./format";

export class ProgressBar {
  private last = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly width = 24,
  ) {}

  get enabled(): boolean {
    return Boolean(this.stream.isTTY);
  }

  /** Redraws at most every 80 ms (and always at 100%). */
  update(label: string, sent: number, total: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (sent < total && now - this.last < 80) return;
    this.last = now;
    const ratio = total > 0 ? Math.min(1, sent / total) : 1;
    const filled = Math.round(ratio * this.width);
    const bar = `${"#".repeat(filled)}${"-".repeat(this.width - filled)}`;
    const pct = `${Math.floor(ratio * 100)}`.padStart(3);
    const columns = this.stream.columns ?? 80;
    const line = `[${bar}] ${pct}% ${formatBytes(sent)}/${formatBytes(total)} ${label}`;
    this.stream.write(`\r\x1b[2K${line.slice(0, columns - 1)}`);
    this.drawn = true;
  }

  /** Erases the bar so the next printed line starts clean. */
  clear(): void {
    if (!this.enabled || !this.drawn) return;
    this.stream.write("\r\x1b[2K");
    this.drawn = false;
  }
}
