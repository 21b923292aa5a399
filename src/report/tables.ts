/**
 * The paper's tables from a study's results, as data, then as Markdown and CSV:
 * - Table 1: DSC and NSD per fold and mean +/- std, per strategy and pre-trained model;
 * - Table 2: Sensitivity, F1 (the paper's F1 of the mean precision and sensitivity) and Accuracy;
 * - Table 3: per strategy with the multi-lesion model (and from scratch): DSC, NSD, Sensitivity
 *   and seconds per epoch, per fold and mean +/- std.
 * In every column the best value is marked (highest; lowest for seconds per epoch): bold in
 * Markdown, named in the CSV's `best` column (so the numbers stay numbers). Where results.json has
 * comparisons, the DSC, NSD and Sensitivity means of an arm significantly higher than from
 * scratch carry a dagger, significantly lower a double dagger (case level, Holm-adjusted, see
 * findings.md); the CSV names them in a `vs_scratch` column. With several seeds a per-fold cell is
 * the mean over seeds, a summary cell `mean +/- fold std (seed std s)`, and the CSV gains
 * `<metric>_seed_std`; variant arms show their name and the CSV gains an `arm` column. A one-seed
 * study of plain strategies without comparisons keeps the columns it always had.
 */
import { csvText } from '../core/index.js';
import type { ArmResult, ComparisonResult, StudyResults, TableMetric } from '../experiments/index.js';

export interface TableCell {
  mean: number | null;
  /** Null in per-fold cells. */
  std: number | null;
  /** Seed-to-seed std (summary cells of studies with several seeds). */
  seedStd: number | null;
  best: boolean;
  /** Significantly higher (dagger) or lower (double dagger) than from scratch, or ''. */
  mark: '' | '\u2020' | '\u2021';
}

export const HIGHER_MARK = '\u2020';
export const LOWER_MARK = '\u2021';

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
  /** `name`: the arm's name (the strategy's unless a variant). */
  rows: { strategy: string; pretrained: string; name: string; cells: TableCell[] }[];
  notes: string[];
  /** Whether any arm is a named variant / the study has several seeds / comparisons exist (extra CSV columns). */
  variants: boolean;
  seeds: boolean;
  marked: boolean;
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

/** The strategy's label, with a variant's name in brackets: `Hybrid-encoder Learning [hybrid-random-decoder]`. */
export function armStrategyLabel(arm: { strategy: string; name?: string }): string {
  const name = arm.name ?? arm.strategy;
  return name === arm.strategy ? strategyLabel(arm.strategy) : `${strategyLabel(arm.strategy)} [${name}]`;
}

export function pretrainedLabel(pretrained: string): string {
  return pretrained === 'none' ? '-' : pretrained === 'multi' ? 'multi-lesion' : pretrained;
}

/** An arm in words: `From scratch`, `Hybrid-encoder Learning (multi-lesion)`, `... [variant name] (multi-lesion)`. */
export function armLabel(arm: { strategy: string; pretrained: string; name?: string }): string {
  return arm.strategy === 'scratch' ? armStrategyLabel(arm) : `${armStrategyLabel(arm)} (${pretrainedLabel(arm.pretrained)})`;
}

function columnsFor(metrics: readonly TableMetric[], folds: readonly number[], perFold: boolean): TableColumn[] {
  return metrics.flatMap((metric) => [
    ...(perFold ? folds.map((fold) => ({ header: `${METRIC_LABELS[metric]} fold ${fold}`, csvKey: `${metric}_fold${fold}`, metric, summary: false })) : []),
    { header: `${METRIC_LABELS[metric]} mean +/- std`, csvKey: metric, metric, summary: true },
  ]);
}

const MARKED_METRICS: ReadonlySet<TableMetric> = new Set(['dsc', 'nsd', 'sensitivity']);

/** The case-level comparison of an arm against scratch for a metric, if results.json has it. */
function againstScratch(results: StudyResults, arm: ArmResult, metric: TableMetric): ComparisonResult | undefined {
  const name = arm.name ?? arm.strategy;
  return results.comparisons?.results.find((c) => c.family === 'vs-scratch' && c.level === 'cases' && c.metric === metric && c.a.pretrained === arm.pretrained && c.a.name === name);
}

function cellOf(results: StudyResults, arm: ArmResult, column: TableColumn): TableCell {
  if (column.summary) {
    const s = arm.summary[column.metric];
    const comparison = MARKED_METRICS.has(column.metric) ? againstScratch(results, arm, column.metric) : undefined;
    const mark = comparison?.significance === 'for' ? HIGHER_MARK : comparison?.significance === 'against' ? LOWER_MARK : '';
    return { mean: s.mean, std: s.std, seedStd: s.seedStd ?? null, best: false, mark };
  }
  // One value per seed for this fold: their mean.
  const values = arm.folds.filter((f) => `${column.metric}_fold${f.fold}` === column.csvKey).map((f) => f.metrics[column.metric]).filter((v): v is number => v !== null);
  return { mean: values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : null, std: null, seedStd: null, best: false, mark: '' };
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

export const MARK_NOTE = `${HIGHER_MARK} / ${LOWER_MARK}: significantly higher / lower than from scratch (paired test cases of all folds, two-sided Wilcoxon signed-rank test, Holm-adjusted p < 0.05 over the comparisons against scratch of that metric; see findings.md)`;

function buildTable(results: StudyResults, id: StudyTable['id'], title: string, arms: readonly ArmResult[], columns: TableColumn[], notes: string[]): StudyTable {
  const rows = arms.map((arm) => ({ strategy: arm.strategy, pretrained: arm.pretrained, name: arm.name ?? arm.strategy, cells: columns.map((column) => cellOf(results, arm, column)) }));
  const marked = results.comparisons !== undefined;
  const seeds = arms.some((arm) => (arm.seeds?.length ?? 1) > 1);
  const allNotes = [...notes, ...(seeds ? [`mean over ${arms[0]?.seeds?.length ?? 1} seeds; +/- the fold-to-fold std (mean over seeds of each seed's population std over folds), then the seed-to-seed std (population std of the seeds' means over folds); a per-fold value is the mean over seeds`] : []), ...(marked ? [MARK_NOTE] : [])];
  return markBest({ id, title, columns, rows, notes: allNotes, variants: rows.some((r) => r.name !== r.strategy), seeds, marked });
}

/** The three tables of a study. */
export function studyTables(results: StudyResults): StudyTable[] {
  const folds = results.target.folds;
  const across = `mean +/- std over ${folds.length} fold(s) (population std of the fold means); each fold's value is the mean over its test cases`;
  const multiArms = results.arms.filter((a) => a.pretrained === 'multi' || a.strategy === 'scratch');
  return [
    buildTable(results, 'table1', 'Table 1: DSC and NSD per fold, per strategy and pre-trained model', results.arms, columnsFor(['dsc', 'nsd'], folds, true), [
      across,
      `NSD at ${results.target.toleranceMm} mm tolerance`,
    ]),
    buildTable(results, 'table2', 'Table 2: Sensitivity, F1 and Accuracy', results.arms, columnsFor(['sensitivity', 'f1', 'accuracy'], folds, false), [across, TABLE_F1_NOTE]),
    buildTable(results, 'table3', 'Table 3: strategies with the multi-lesion model: DSC, NSD, Sensitivity and seconds per epoch', multiArms, columnsFor(['dsc', 'nsd', 'sensitivity', 'secondsPerEpoch'], folds, true), [
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
  if (!column.summary || cell.std === null) return format(column.metric, cell.mean);
  const seeds = cell.seedStd !== null ? ` (seed std ${format(column.metric, cell.seedStd)})` : '';
  return `${format(column.metric, cell.mean)} +/- ${format(column.metric, cell.std)}${seeds}`;
}

export function tableMarkdown(table: StudyTable): string {
  const header = ['Strategy', 'Pre-trained', ...table.columns.map((c) => c.header)];
  const lines = [`### ${table.title}`, '', `| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const row of table.rows) {
    const cells = row.cells.map((cell, c) => {
      const text = cellText(table.columns[c]!, cell);
      return `${cell.best ? `**${text}**` : text}${cell.mark}`;
    });
    lines.push(`| ${[armStrategyLabel(row), pretrainedLabel(row.pretrained), ...cells].join(' | ')} |`);
  }
  lines.push('', 'Best value of each column in bold.', ...table.notes.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

function csvNumber(value: number | null): string {
  return value === null ? '' : String(value);
}

export function tableCsv(table: StudyTable): string {
  const header = ['strategy', ...(table.variants ? ['arm'] : []), 'pretrained'];
  for (const column of table.columns) header.push(...(column.summary ? [`${column.csvKey}_mean`, `${column.csvKey}_std`, ...(table.seeds ? [`${column.csvKey}_seed_std`] : [])] : [column.csvKey]));
  header.push('best', ...(table.marked ? ['vs_scratch'] : []));
  const lines = [header.join(',')];
  for (const row of table.rows) {
    const fields = [csvText(row.strategy), ...(table.variants ? [csvText(row.name)] : []), csvText(row.pretrained)];
    const best: string[] = [];
    const marks: string[] = [];
    row.cells.forEach((cell, c) => {
      const column = table.columns[c]!;
      if (column.summary) fields.push(csvNumber(cell.mean), csvNumber(cell.std), ...(table.seeds ? [csvNumber(cell.seedStd)] : []));
      else fields.push(csvNumber(cell.mean));
      if (cell.best) best.push(column.summary ? `${column.csvKey}_mean` : column.csvKey);
      if (cell.mark !== '') marks.push(`${column.csvKey}:${cell.mark === HIGHER_MARK ? 'higher' : 'lower'}`);
    });
    fields.push(csvText(best.join(';')), ...(table.marked ? [csvText(marks.join(';'))] : []));
    lines.push(fields.join(','));
  }
  return `${lines.join('\n')}\n`;
}
