/**
 * The report's charts as inline SVG (no plotting library): box plots (per-case DSC / NSD per arm),
 * line charts (learning curves) and bar charts with error bars (seconds per epoch). Each function
 * is pure: data in, an <svg> string out, sized by a fixed viewBox so it scales in the page.
 */

export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'] as const;

export function colour(index: number): string {
  return PALETTE[index % PALETTE.length]!;
}

export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Quantile with linear interpolation between order statistics (numpy's default). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export interface BoxStats {
  q1: number;
  median: number;
  q3: number;
  whiskerLow: number;
  whiskerHigh: number;
  outliers: number[];
}

/** Tukey box: whiskers at the most extreme values within 1.5 IQR of the box. */
export function boxStats(values: readonly number[]): BoxStats | null {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  const iqr = q3 - q1;
  const inside = sorted.filter((v) => v >= q1 - 1.5 * iqr && v <= q3 + 1.5 * iqr);
  return { q1, median: quantile(sorted, 0.5), q3, whiskerLow: inside[0]!, whiskerHigh: inside.at(-1)!, outliers: sorted.filter((v) => !inside.includes(v)) };
}

const WIDTH = 720;
const HEIGHT = 360;
const MARGIN = { left: 70, right: 20, top: 36, bottom: 90 };

interface Frame {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
  yOf(value: number): number;
}

function frame(yMin: number, yMax: number): Frame {
  const x0 = MARGIN.left;
  const x1 = WIDTH - MARGIN.right;
  const y0 = HEIGHT - MARGIN.bottom;
  const y1 = MARGIN.top;
  const span = yMax - yMin || 1;
  return { x0, x1, y0, y1, yOf: (value) => y0 - ((value - yMin) / span) * (y0 - y1) };
}

function niceTicks(min: number, max: number, count = 5): number[] {
  const span = max - min || 1;
  const raw = span / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function axes(f: Frame, yMin: number, yMax: number, title: string, yLabel: string): string[] {
  const parts = [
    `<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<line x1="${f.x0}" y1="${f.y0}" x2="${f.x1}" y2="${f.y0}" stroke="#333"/>`,
    `<line x1="${f.x0}" y1="${f.y0}" x2="${f.x0}" y2="${f.y1}" stroke="#333"/>`,
    `<text x="16" y="${(f.y0 + f.y1) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${(f.y0 + f.y1) / 2})">${escapeXml(yLabel)}</text>`,
  ];
  for (const tick of niceTicks(yMin, yMax)) {
    const y = f.yOf(tick).toFixed(1);
    parts.push(`<line x1="${f.x0 - 4}" y1="${y}" x2="${f.x1}" y2="${y}" stroke="#ddd"/>`, `<text x="${f.x0 - 7}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle">${tick}</text>`);
  }
  return parts;
}

function svg(parts: string[], label: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escapeXml(label)}" font-family="sans-serif">${parts.join('')}</svg>`;
}

function categoryLabel(x: number, y: number, text: string): string {
  return `<text x="${x.toFixed(1)}" y="${y + 14}" font-size="11" text-anchor="end" transform="rotate(-25 ${x.toFixed(1)} ${y + 14})">${escapeXml(text)}</text>`;
}

export interface BoxGroup {
  label: string;
  values: number[];
}

export function boxPlotSvg(title: string, yLabel: string, groups: readonly BoxGroup[], yRange: [number, number] = [0, 1]): string {
  const f = frame(yRange[0], yRange[1]);
  const parts = axes(f, yRange[0], yRange[1], title, yLabel);
  const slot = (f.x1 - f.x0) / Math.max(1, groups.length);
  groups.forEach((group, i) => {
    const cx = f.x0 + slot * (i + 0.5);
    const half = Math.min(30, slot * 0.3);
    const stats = boxStats(group.values);
    const c = colour(i);
    if (stats !== null) {
      const y = (v: number): string => f.yOf(v).toFixed(1);
      parts.push(
        `<line x1="${cx}" y1="${y(stats.whiskerLow)}" x2="${cx}" y2="${y(stats.whiskerHigh)}" stroke="${c}"/>`,
        `<line x1="${cx - half / 2}" y1="${y(stats.whiskerLow)}" x2="${cx + half / 2}" y2="${y(stats.whiskerLow)}" stroke="${c}"/>`,
        `<line x1="${cx - half / 2}" y1="${y(stats.whiskerHigh)}" x2="${cx + half / 2}" y2="${y(stats.whiskerHigh)}" stroke="${c}"/>`,
        `<rect x="${cx - half}" y="${y(stats.q3)}" width="${2 * half}" height="${Math.max(0.5, f.yOf(stats.q1) - f.yOf(stats.q3)).toFixed(1)}" fill="${c}" fill-opacity="0.35" stroke="${c}"/>`,
        `<line x1="${cx - half}" y1="${y(stats.median)}" x2="${cx + half}" y2="${y(stats.median)}" stroke="#000" stroke-width="2"/>`,
        ...stats.outliers.map((v) => `<circle cx="${cx}" cy="${y(v)}" r="3" fill="none" stroke="${c}"/>`),
      );
    }
    parts.push(categoryLabel(cx, f.y0, `${group.label} (n=${group.values.length})`));
  });
  return svg(parts, title);
}

export interface LineSeries {
  label: string;
  points: [number, number][];
}

export function lineChartSvg(title: string, xLabel: string, yLabel: string, series: readonly LineSeries[]): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v));
  const yMin = Math.min(0, ...ys);
  const yMax = ys.length > 0 ? Math.max(...ys) * 1.05 || 1 : 1;
  const xMin = xs.length > 0 ? Math.min(...xs) : 0;
  const xMax = xs.length > 0 ? Math.max(...xs) : 1;
  const f = frame(yMin, yMax);
  const xOf = (x: number): number => f.x0 + ((x - xMin) / (xMax - xMin || 1)) * (f.x1 - f.x0);
  const parts = axes(f, yMin, yMax, title, yLabel);
  parts.push(`<text x="${(f.x0 + f.x1) / 2}" y="${f.y0 + 32}" font-size="12" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  for (const tick of niceTicks(xMin, xMax, 8)) parts.push(`<text x="${xOf(tick).toFixed(1)}" y="${f.y0 + 15}" font-size="11" text-anchor="middle">${tick}</text>`);
  series.forEach((s, i) => {
    const points = s.points.filter((p) => Number.isFinite(p[1]));
    if (points.length > 0) parts.push(`<polyline fill="none" stroke="${colour(i)}" stroke-width="2" points="${points.map((p) => `${xOf(p[0]).toFixed(1)},${f.yOf(p[1]).toFixed(1)}`).join(' ')}"/>`);
    const lx = f.x0 + 10 + (i % 4) * 160;
    const ly = f.y0 + 48 + Math.floor(i / 4) * 16;
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="12" height="4" fill="${colour(i)}"/>`, `<text x="${lx + 16}" y="${ly - 3}" font-size="11">${escapeXml(s.label)}</text>`);
  });
  return svg(parts, title);
}

export interface Bar {
  label: string;
  value: number | null;
  error: number | null;
}

export function barChartSvg(title: string, yLabel: string, bars: readonly Bar[]): string {
  const tops = bars.map((b) => (b.value ?? 0) + (b.error ?? 0));
  const yMax = Math.max(1e-9, ...tops) * 1.1;
  const f = frame(0, yMax);
  const parts = axes(f, 0, yMax, title, yLabel);
  const slot = (f.x1 - f.x0) / Math.max(1, bars.length);
  bars.forEach((bar, i) => {
    const cx = f.x0 + slot * (i + 0.5);
    const half = Math.min(30, slot * 0.3);
    if (bar.value !== null) {
      parts.push(`<rect x="${cx - half}" y="${f.yOf(bar.value).toFixed(1)}" width="${2 * half}" height="${(f.y0 - f.yOf(bar.value)).toFixed(1)}" fill="${colour(i)}" fill-opacity="0.8"/>`);
      if (bar.error !== null && bar.error > 0) {
        const lo = f.yOf(bar.value - bar.error).toFixed(1);
        const hi = f.yOf(bar.value + bar.error).toFixed(1);
        parts.push(`<line x1="${cx}" y1="${lo}" x2="${cx}" y2="${hi}" stroke="#000"/>`, `<line x1="${cx - 6}" y1="${hi}" x2="${cx + 6}" y2="${hi}" stroke="#000"/>`);
      }
      parts.push(`<text x="${cx}" y="${(f.yOf(bar.value) - 4).toFixed(1)}" font-size="11" text-anchor="middle">${bar.value.toFixed(2)}</text>`);
    }
    parts.push(categoryLabel(cx, f.y0, bar.label));
  });
  return svg(parts, title);
}
