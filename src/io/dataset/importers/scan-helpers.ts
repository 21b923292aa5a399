/**
 * Small helpers for scanning a release's folders: NIfTI names without macOS `._` resource forks or
 * hidden files, finding `<stem>.nii.gz` or `<stem>.nii`, and the first of several candidate folders.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const NIFTI_NAME = /\.nii(\.gz)?$/i;

/** The stem of a NIfTI file name (without .nii or .nii.gz). */
export function niftiStem(name: string): string {
  return name.replace(NIFTI_NAME, '');
}

function isHidden(name: string): boolean {
  return name.startsWith('.'); // includes macOS `._` AppleDouble files
}

/** Sorted visible NIfTI file names in `folder` (empty when the folder is missing). */
export function niftiNames(folder: string): string[] {
  if (!isFolder(folder)) return [];
  return fs
    .readdirSync(folder)
    .filter((name) => !isHidden(name) && NIFTI_NAME.test(name) && fs.statSync(path.join(folder, name)).isFile())
    .sort();
}

/** Sorted visible sub-folder names of `folder`. */
export function folderNames(folder: string): string[] {
  if (!isFolder(folder)) return [];
  return fs
    .readdirSync(folder)
    .filter((name) => !isHidden(name) && isFolder(path.join(folder, name)))
    .sort();
}

export function isFolder(file: string): boolean {
  try {
    return fs.statSync(file).isDirectory();
  } catch {
    return false;
  }
}

/** `<folder>/<stem>.nii.gz` or `<folder>/<stem>.nii`, whichever exists, else undefined. */
export function findNifti(folder: string, stem: string): string | undefined {
  for (const ending of ['.nii.gz', '.nii']) {
    const file = path.join(folder, `${stem}${ending}`);
    if (fs.existsSync(file)) return file;
  }
  return undefined;
}

/** The first existing folder among `candidates`, else undefined. */
export function firstFolder(candidates: readonly string[]): string | undefined {
  return candidates.find(isFolder);
}

/** True when `file` lies inside `root` (after resolving '..' and symlinks where they exist). */
export function isInside(root: string, file: string): boolean {
  const real = (p: string) => {
    try {
      return fs.realpathSync(p);
    } catch {
      return path.resolve(p);
    }
  };
  const relative = path.relative(real(root), real(file));
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
