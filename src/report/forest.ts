/**
 * The forest plot of the report: one row per comparison (e.g. every arm against from scratch), the
 * mean difference as a dot and its 95 % bootstrap interval as a line, a dashed line at zero; the
 * dot is filled where the Holm-adjusted difference is significant (green for, red against), open
 * where it is not. Pure: rows in, an <svg> string out (inline, like charts.ts).
 */
import { colour, escapeXml } from './charts.js';

export interface ForestRow {
  label: string;
  difference: number | null;
  low: number | null;
  high: number | null;
  significance: 'for' | 'against' | 'neither';
  /** Right-hand note, e.g. the adjusted p-value. */
  note: string;
}

const WIDTH = 720;
const LEFT = 250;
const RIGHT = 130;
const TOP = 40;
const ROW = 22;
const BOTTOM = 46;

function ticks(min: number, max: number): number[] {
  const span = max - min || 1;
  const raw = span / 6;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

export function forestPlotSvg(title: string, xLabel: string, rows: readonly ForestRow[]): string {
  const height = TOP + Math.max(1, rows.length) * ROW + BOTTOM;
  const finite = rows.flatMap((r) => [r.low, r.high, r.difference]).filter((v): v is number => v !== null && Number.isFinite(v));
  const extent = Math.max(1e-3, ...finite.map(Math.abs)) * 1.1;
  const x0 = LEFT;
  const x1 = WIDTH - RIGHT;
  const xOf = (v: number): string => (x0 + ((v + extent) / (2 * extent)) * (x1 - x0)).toFixed(1);
  const yBottom = TOP + rows.length * ROW;
  const parts = [
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<line x1="${x0}" y1="${yBottom}" x2="${x1}" y2="${yBottom}" stroke="#333"/>`,
    `<line x1="${xOf(0)}" y1="${TOP - 6}" x2="${xOf(0)}" y2="${yBottom}" stroke="#555" stroke-dasharray="4 3"/>`,
    `<text x="${(x0 + x1) / 2}" y="${yBottom + 36}" font-size="12" text-anchor="middle">${escapeXml(xLabel)}</text>`,
  ];
  for (const t of ticks(-extent, extent)) parts.push(`<line x1="${xOf(t)}" y1="${yBottom}" x2="${xOf(t)}" y2="${yBottom + 4}" stroke="#333"/>`, `<text x="${xOf(t)}" y="${yBottom + 17}" font-size="11" text-anchor="middle">${t}</text>`);
  rows.forEach((row, i) => {
    const y = (TOP + i * ROW + ROW / 2).toFixed(1);
    parts.push(`<text x="${x0 - 8}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle">${escapeXml(row.label)}</text>`);
    parts.push(`<text x="${x1 + 8}" y="${y}" font-size="11" dominant-baseline="middle">${escapeXml(row.note)}</text>`);
    if (row.difference === null) return;
    const c = row.significance === 'for' ? colour(2) : row.significance === 'against' ? colour(3) : '#555';
    if (row.low !== null && row.high !== null) parts.push(`<line x1="${xOf(row.low)}" y1="${y}" x2="${xOf(row.high)}" y2="${y}" stroke="${c}" stroke-width="2"/>`);
    parts.push(`<circle cx="${xOf(row.difference)}" cy="${y}" r="4.5" stroke="${c}" stroke-width="2" fill="${row.significance === 'neither' ? '#fff' : c}"/>`);
  });
  if (rows.length === 0) parts.push(`<text x="${(x0 + x1) / 2}" y="${TOP + ROW / 2}" font-size="12" text-anchor="middle">no comparisons</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" role="img" aria-label="${escapeXml(title)}" font-family="sans-serif">${parts.join('')}</svg>`;
}
