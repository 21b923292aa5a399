/**
 * What the benchmarks share: their command line (`--name value` options and flags), the
 * median they report, and how the scripts that drive nnU-Net from its source run it.
 */
import { writeFileSync } from 'node:fs';

/** The benchmark's arguments (after the script). */
export const args = process.argv.slice(2);

/** The value after `--name`, or `fallback` when it is not given. */
export function option(name: string, fallback: string): string {
  const index = args.indexOf(`--${name}`);
  return index >= 0 && args[index + 1] !== undefined ? args[index + 1]! : fallback;
}

/** Comma-separated integers ("32,96,96"). */
export function ints(text: string): number[] {
  return text.split(',').map(Number);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Print the benchmark's JSON on stdout, and into the file after `--out` when given. */
export function report(result: unknown): void {
  const text = `${JSON.stringify(result, null, 2)}\n`;
  const outFile = option('out', '');
  if (outFile !== '') writeFileSync(outFile, text);
  process.stdout.write(text);
}

