/**
 * The nnU-Net v2 raw layout: imagesTr/<case>_<XXXX><ending> (one file per channel XXXX),
 * labelsTr/<case><ending>, imagesTs/ (and optionally labelsTs/). Lists cases from the image files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readDatasetJson } from './dataset-json.js';

export interface RawCase {
  id: string;
  /** One absolute path per channel, in channel order: images<split>/<id>_0000<ending>, ... */
  images: string[];
  /** Absolute path of labels<split>/<id><ending>, or null when that file does not exist. */
  label: string | null;
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Image file names of a folder grouped by case id: id -> channel indices found. */
export function scanImageFolder(folder: string, fileEnding: string): Map<string, number[]> {
  const pattern = new RegExp(`^(.+)_(\\d{4})${escapeRegExp(fileEnding)}$`);
  const cases = new Map<string, number[]>();
  if (!fs.existsSync(folder)) return cases;
  for (const name of fs.readdirSync(folder).sort()) {
    const match = pattern.exec(name);
    if (!match) continue;
    const channels = cases.get(match[1]!) ?? [];
    channels.push(Number(match[2]));
    cases.set(match[1]!, channels);
  }
  return cases;
}

export function imagePath(datasetDir: string, split: 'Tr' | 'Ts', id: string, channel: number, fileEnding: string): string {
  return path.resolve(datasetDir, `images${split}`, `${id}_${String(channel).padStart(4, '0')}${fileEnding}`);
}

export function labelPath(datasetDir: string, split: 'Tr' | 'Ts', id: string, fileEnding: string): string {
  return path.resolve(datasetDir, `labels${split}`, `${id}${fileEnding}`);
}

/**
 * The cases of a raw dataset split, sorted by id, with absolute paths. Reads (and validates)
 * dataset.json for file_ending and the channel count; a case missing a channel file still lists
 * its path (checkDataset reports it).
 */
export function listRawCases(datasetDir: string, split: 'Tr' | 'Ts' = 'Tr'): RawCase[] {
  const json = readDatasetJson(datasetDir);
  const ending = json.file_ending;
  const channelCount = Object.keys(json.channel_names).length;
  const ids = [...scanImageFolder(path.join(datasetDir, `images${split}`), ending).keys()].sort();
  return ids.map((id) => {
    const label = labelPath(datasetDir, split, id, ending);
    return {
      id,
      images: Array.from({ length: channelCount }, (_, channel) => imagePath(datasetDir, split, id, channel, ending)),
      label: fs.existsSync(label) ? label : null,
    };
  });
}
