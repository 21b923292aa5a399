/**
 * Enhanced CT (SOP class 1.2.840.10008.5.1.4.1.1.2.1): one file holds every slice as a frame, and
 * the tags that place and scale each frame sit in functional groups, not at the top level (PS3.3
 * C.7.6.16): Plane Position (ImagePositionPatient) per frame, Plane Orientation, Pixel Measures
 * (PixelSpacing, SliceThickness) and Pixel Value Transformation (RescaleIntercept/Slope) shared or
 * per frame. enhancedCtFrames turns such a header into one header per frame, each with the top-level
 * attributes, then the shared group's, then its own frame's (the more specific wins), so that the
 * series checks (dicom-series.ts) see the frames as they see the slices of a single-frame series.
 * dcm2niix reads the file itself (its frames decoded first where compressed, dicom-decode.ts).
 */
import { InputError } from '../../core/index.js';
import type { DicomHeader } from './header.js';

export const ENHANCED_CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2.1';

/** A header that stands for one frame of a multi-frame file (frame: 1-based; null for a single-frame file). */
export type FrameHeader = DicomHeader & { frame: number | null };

/** Whether `header` is an Enhanced CT image. */
export function isEnhancedCt(header: DicomHeader): boolean {
  return header.text.SOPClassUID === ENHANCED_CT_IMAGE_STORAGE;
}

/** One header per frame of an Enhanced CT image (see the file comment); a single-frame header as it is. */
export function enhancedCtFrames(header: DicomHeader): FrameHeader[] {
  if (!isEnhancedCt(header)) return [{ ...header, frame: null }];
  const frames = header.numbers.NumberOfFrames?.[0];
  const groups = header.functionalGroups;
  if (frames === undefined || !Number.isInteger(frames) || frames < 1) {
    throw new InputError(`is an Enhanced CT image without a usable NumberOfFrames (0028,0008): ${header.text.NumberOfFrames ?? '(none)'}`, { file: header.file, code: 'dicom-missing-tag' });
  }
  if (groups === null || groups.perFrame.length !== frames) {
    throw new InputError(`is an Enhanced CT image of ${frames} frames whose PerFrameFunctionalGroupsSequence (5200,9230) holds ${groups?.perFrame.length ?? 0} items: its frames cannot be placed`, { file: header.file, code: 'dicom-missing-tag' });
  }
  return groups.perFrame.map((own, index) => ({
    ...header,
    text: { ...header.text, ...groups.shared?.text, ...own.text },
    numbers: { ...header.numbers, ...groups.shared?.numbers, ...own.numbers },
    frame: index + 1,
  }));
}
