/**
 * The paper's tables from a study's results, as data, then as Markdown and CSV:
 * - Table 1: DSC and NSD per fold and mean +/- std, per strategy and pre-trained model;
 * - Table 2: Sensitivity, F1 (the paper's F1 of the mean precision and sensitivity) and Accuracy;
 * - Table 3: per strategy with the multi-lesion model (and from scratch): DSC, NSD, Sensitivity
 *   and seconds per epoch, per fold and mean +/- std.
 * In every column the best value is marked (highest; lowest for seconds per epoch): bold in
 * Markdown, named in the CSV's `best` column (so the numbers stay numbers).
 */
import type { ArmResult, StudyResults, TableMetric } from '../experiments/index.js';

export interface TableCell {
  mean: number | null;
  /** Null in per-fold cells. */
  std: number | null;
  best: boolean;
}

export interface TableColumn {
  header: string;
  /** CSV column name(s): `<metric>_fold<K>`, or `<metric>_mean` and `<metric>_std`. */
  csvKey: string;
  metric: TableMetric;
  summary: boolean;
}

export interface StudyTable {
  id: 'table1' | 'table2' | 'table3';
  title: string;
  columns: TableColumn[];
  rows: { strategy: string; pretrained: string; cells: TableCell[] }[];
  notes: string[];
}

export const STRATEGY_LABELS: Readonly<Record<string, string>> = {
  scratch: 'From scratch',
  continual: 'Continual Learning',
  finetune: 'Body Fine-tuning',
  'frozen-encoder': 'Pre-trained Lesion Representations',
  hybrid: 'Hybrid-encoder Learning',
};

const METRIC_LABELS: Readonly<Record<TableMetric, string>> = {
  dsc: 'DSC',
  nsd: 'NSD',
  sensitivity: 'Sensitivity',
  precision: 'Precision',
  f1: 'F1 (of means)',
  accuracy: 'Accuracy',
  hd95: 'HD95 (mm)',
  secondsPerEpoch: 's/epoch',
};

/** Table 2's F1, said where the table is read (results.json's f1Note speaks of its own fields). */
export const TABLE_F1_NOTE =
  "F1 (of means): per fold, 2PS/(P+S) of the fold's mean precision P and mean sensitivity S, the F1 the transfer paper reports; per-case F1 equals DSC for binary masks";

const LOWER_IS_BETTER: ReadonlySet<TableMetric> = new Set(['secondsPerEpoch', 'hd95']);

export function strategyLabel(strategy: string): string {
  return STRATEGY_LABELS[strategy] ?? strategy;
}

export function pretrainedLabel(pretrained: string): string {
  return pretrained === 'none' ? '-' : pretrained === 'multi' ? 'multi-lesion' : pretrained;
}

function columnsFor(metrics: readonly TableMetric[], folds: readonly number[], perFold: boolean): TableColumn[] {
  return metrics.flatMap((metric) => [
    ...(perFold ? folds.map((fold) => ({ header: `${METRIC_LABELS[metric]} fold ${fold}`, csvKey: `${metric}_fold${fold}`, metric, summary: false })) : []),
    { header: `${METRIC_LABELS[metric]} mean +/- std`, csvKey: metric, metric, summary: true },
  ]);
}

function cellOf(arm: ArmResult, column: TableColumn): TableCell {
  if (column.summary) {
    const s = arm.summary[column.metric];
    return { mean: s.mean, std: s.std, best: false };
  }
  const fold = arm.folds.find((f) => `${column.metric}_fold${f.fold}` === column.csvKey);
  return { mean: fold?.metrics[column.metric] ?? null, std: null, best: false };
}

/** Mark the best cell of every column (ties all marked); a column whose values are all equal marks nothing. */
function markBest(table: StudyTable): StudyTable {
  if (table.rows.length < 2) return table;
  table.columns.forEach((column, c) => {
    const values = table.rows.map((row) => row.cells[c]!.mean).filter((v): v is number => v !== null);
    if (values.length === 0 || values.every((v) => v === values[0])) return;
    const best = LOWER_IS_BETTER.has(column.metric) ? Math.min(...values) : Math.max(...values);
    for (const row of table.rows) if (row.cells[c]!.mean === best) row.cells[c]!.best = true;
  });
  return table;
}

function buildTable(id: StudyTable['id'], title: string, arms: readonly ArmResult[], columns: TableColumn[], notes: string[]): StudyTable {
  const rows = arms.map((arm) => ({ strategy: arm.strategy, pretrained: arm.pretrained, cells: columns.map((column) => cellOf(arm, column)) }));
  return markBest({ id, title, columns, rows, notes });
}

/** The three tables of a study. */
export function studyTables(results: StudyResults): StudyTable[] {
  const folds = results.target.folds;
  const across = `mean +/- std over ${folds.length} fold(s) (population std of the fold means); each fold's value is the mean over its test cases`;
  const multiArms = results.arms.filter((a) => a.pretrained === 'multi' || a.strategy === 'scratch');
  return [
    buildTable('table1', 'Table 1: DSC and NSD per fold, per strategy and pre-trained model', results.arms, columnsFor(['dsc', 'nsd'], folds, true), [
      across,
      `NSD at ${results.target.toleranceMm} mm tolerance`,
    ]),
    buildTable('table2', 'Table 2: Sensitivity, F1 and Accuracy', results.arms, columnsFor(['sensitivity', 'f1', 'accuracy'], folds, false), [across, TABLE_F1_NOTE]),
    buildTable('table3', 'Table 3: strategies with the multi-lesion model: DSC, NSD, Sensitivity and seconds per epoch', multiArms, columnsFor(['dsc', 'nsd', 'sensitivity', 'secondsPerEpoch'], folds, true), [
      across,
      's/epoch: mean training seconds per epoch of the fold\'s run (validation excluded); lower is marked best',
    ]),
  ];
}

function format(metric: TableMetric, value: number | null): string {
  if (value === null) return 'n/a';
  return metric === 'secondsPerEpoch' || metric === 'hd95' ? value.toFixed(2) : value.toFixed(4);
}

export function cellText(column: TableColumn, cell: TableCell): string {
  if (cell.mean === null) return 'n/a';
  return column.summary && cell.std !== null ? `${format(column.metric, cell.mean)} +/- ${format(column.metric, cell.std)}` : format(column.metric, cell.mean);
}

export function tableMarkdown(table: StudyTable): string {
  const header = ['Strategy', 'Pre-trained', ...table.columns.map((c) => c.header)];
  const lines = [`### ${table.title}`, '', `| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const row of table.rows) {
    const cells = row.cells.map((cell, c) => {
      const text = cellText(table.columns[c]!, cell);
      return cell.best ? `**${text}**` : text;
    });
    lines.push(`| ${[strategyLabel(row.strategy), pretrainedLabel(row.pretrained), ...cells].join(' | ')} |`);
  }
  lines.push('', 'Best value of each column in bold.', ...table.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

function csvField(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function csvNumber(value: number | null): string {
  return value === null ? '' : String(value);
}

export function tableCsv(table: StudyTable): string {
  const header = ['strategy', 'pretrained'];
  for (const column of table.columns) header.push(...(column.summary ? [`${column.csvKey}_mean`, `${column.csvKey}_std`] : [column.csvKey]));
  header.push('best');
  const lines = [header.join(',')];
  for (const row of table.rows) {
    const fields = [csvField(row.strategy), csvField(row.pretrained)];
    const best: string[] = [];
    row.cells.forEach((cell, c) => {
      const column = table.columns[c]!;
      if (column.summary) fields.push(csvNumber(cell.mean), csvNumber(cell.std));
      else fields.push(csvNumber(cell.mean));
      if (cell.best) best.push(column.summary ? `${column.csvKey}_mean` : column.csvKey);
    });
    fields.push(csvField(best.join(';')));
    lines.push(fields.join(','));
  }
  return `${lines.join('\n')}\n`;
}
