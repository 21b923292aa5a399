/**
 * The journal of `pacs watch`: one JSON file per series, STATE/series/<SeriesInstanceUID>.json,
 * each written whole through core's atomic writer (a temporary file, fsync, rename), so a kill -9
 * leaves every entry either as it was or as it became, never half written. A series goes
 *   claimed (attempt n)  ->  storing (the files and SOPInstanceUIDs about to be sent)  ->  done
 *                        \->  failed (its one-line reason)
 * and an entry found at a later pass says what an interrupted process left:
 *   - claimed: the process died while retrieving or predicting (nothing was stored: storing comes
 *     first). The series is tried once more, with a note; an entry already at its second attempt
 *     is marked failed ("interrupted twice"), so a series that kills the process every time (out of
 *     memory) cannot stop the watcher from getting to the others.
 *   - storing: the store may or may not have reached the server. The same files are sent again:
 *     they carry the same SOPInstanceUIDs, so the server keeps one copy of each (a PACS stores an
 *     instance once per UID), and the entry becomes done. Predicting again would make new UIDs, a
 *     second SEG.
 * The results waiting to be stored sit in STATE/results/<SeriesInstanceUID>/ until done.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteJsonSync, InputError } from '../core/index.js';
import { isUid } from '../io/index.js';
import type { ObjectToStore } from './pacsInput.js';

/** Attempts of one series before an interrupted one is marked failed. */
export const MAX_ATTEMPTS = 2;

interface EntryBase {
  study: string;
  series: string;
  /** When the entry was written (ISO 8601). */
  at: string;
}

export type JournalEntry =
  | (EntryBase & { state: 'claimed'; attempt: number; pid: number })
  | (EntryBase & { state: 'storing'; attempt: number; objects: ObjectToStore[] })
  | (EntryBase & { state: 'done'; stored: string[]; note?: string })
  | (EntryBase & { state: 'failed'; reason: string });

const STATES = new Set(['claimed', 'storing', 'done', 'failed']);

export class PacsJournal {
  readonly seriesFolder: string;
  readonly resultsFolder: string;

  constructor(readonly stateFolder: string, private readonly now: () => Date = () => new Date()) {
    this.seriesFolder = path.join(stateFolder, 'series');
    this.resultsFolder = path.join(stateFolder, 'results');
    fs.mkdirSync(this.seriesFolder, { recursive: true });
  }

  private file(series: string): string {
    // A UID from the server names a file only when it is one (digits and dots): no path can be made of it.
    if (!isUid(series)) throw new InputError(`the server lists the series UID ${JSON.stringify(series.slice(0, 80))}, which is not a DICOM UID`, { code: 'dicomweb-reply' });
    return path.join(this.seriesFolder, `${series}.json`);
  }

  /** The entry of `series`, or null when it was never seen. An entry that does not parse is refused, naming the file. */
  get(series: string): JournalEntry | null {
    const file = this.file(series);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    let entry: JournalEntry;
    try {
      entry = JSON.parse(text) as JournalEntry;
    } catch {
      throw new InputError('is not a journal entry (not JSON); remove it to have the series processed again', { file, code: 'bad-json' });
    }
    if (!STATES.has(entry.state) || entry.series !== series) throw new InputError(`is not a journal entry of series ${series}; remove it to have the series processed again`, { file, code: 'bad-value' });
    return entry;
  }

  private put(entry: JournalEntry): JournalEntry {
    atomicWriteJsonSync(this.file(entry.series), entry);
    return entry;
  }

  /** The folder the series' results are written to before they are stored. */
  resultsOf(series: string): string {
    this.file(series);
    return path.join(this.resultsFolder, series);
  }

  claim(study: string, series: string, attempt: number): JournalEntry {
    return this.put({ state: 'claimed', study, series, attempt, pid: process.pid, at: this.now().toISOString() });
  }

  storing(study: string, series: string, attempt: number, objects: readonly ObjectToStore[]): JournalEntry {
    return this.put({ state: 'storing', study, series, attempt, objects: [...objects], at: this.now().toISOString() });
  }

  done(study: string, series: string, stored: readonly string[], note?: string): JournalEntry {
    const entry = this.put({ state: 'done', study, series, stored: [...stored], at: this.now().toISOString(), ...(note !== undefined ? { note } : {}) });
    fs.rmSync(this.resultsOf(series), { recursive: true, force: true });
    return entry;
  }

  failed(study: string, series: string, reason: string): JournalEntry {
    const entry = this.put({ state: 'failed', study, series, reason: reason.split('\n')[0]!, at: this.now().toISOString() });
    fs.rmSync(this.resultsOf(series), { recursive: true, force: true });
    return entry;
  }

  /** Forget a claim (the server went away: not the series' fault, so the attempt does not count). */
  release(series: string): void {
    fs.rmSync(this.file(series), { force: true });
    fs.rmSync(this.resultsOf(series), { recursive: true, force: true });
  }

  /** Every entry, by state (for the pass summary and the tests). */
  counts(): Record<JournalEntry['state'], number> {
    const counts = { claimed: 0, storing: 0, done: 0, failed: 0 };
    for (const name of fs.readdirSync(this.seriesFolder)) {
      if (!name.endsWith('.json')) continue;
      const entry = this.get(name.slice(0, -'.json'.length));
      if (entry !== null) counts[entry.state]++;
    }
    return counts;
  }
}
