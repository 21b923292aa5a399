/**
 * The DICOM identifiers the header reader (dicom.ts) knows: the transfer syntaxes whose data set
 * encoding it reads itself, and the attributes it keeps (keyword -> group, element, VR).
 */
export const TRANSFER_SYNTAX = {
  implicitLittle: '1.2.840.10008.1.2',
  explicitLittle: '1.2.840.10008.1.2.1',
  deflatedExplicitLittle: '1.2.840.10008.1.2.1.99',
  explicitBig: '1.2.840.10008.1.2.2',
} as const;

/** The attributes kept: keyword -> [group, element, VR] (the VR is used for implicit VR data sets). */
export const DICOM_TAGS = {
  SpecificCharacterSet: [0x0008, 0x0005, 'CS'],
  SOPClassUID: [0x0008, 0x0016, 'UI'],
  SOPInstanceUID: [0x0008, 0x0018, 'UI'],
  StudyDate: [0x0008, 0x0020, 'DA'],
  StudyTime: [0x0008, 0x0030, 'TM'],
  AccessionNumber: [0x0008, 0x0050, 'SH'],
  Modality: [0x0008, 0x0060, 'CS'],
  Manufacturer: [0x0008, 0x0070, 'LO'],
  ReferringPhysicianName: [0x0008, 0x0090, 'PN'],
  StudyDescription: [0x0008, 0x1030, 'LO'],
  SeriesDescription: [0x0008, 0x103e, 'LO'],
  PatientName: [0x0010, 0x0010, 'PN'],
  PatientID: [0x0010, 0x0020, 'LO'],
  PatientBirthDate: [0x0010, 0x0030, 'DA'],
  PatientSex: [0x0010, 0x0040, 'CS'],
  SliceThickness: [0x0018, 0x0050, 'DS'],
  SpacingBetweenSlices: [0x0018, 0x0088, 'DS'],
  GantryDetectorTilt: [0x0018, 0x1120, 'DS'],
  StudyInstanceUID: [0x0020, 0x000d, 'UI'],
  SeriesInstanceUID: [0x0020, 0x000e, 'UI'],
  StudyID: [0x0020, 0x0010, 'SH'],
  SeriesNumber: [0x0020, 0x0011, 'IS'],
  InstanceNumber: [0x0020, 0x0013, 'IS'],
  ImagePositionPatient: [0x0020, 0x0032, 'DS'],
  ImageOrientationPatient: [0x0020, 0x0037, 'DS'],
  FrameOfReferenceUID: [0x0020, 0x0052, 'UI'],
  SamplesPerPixel: [0x0028, 0x0002, 'US'],
  NumberOfFrames: [0x0028, 0x0008, 'IS'],
  Rows: [0x0028, 0x0010, 'US'],
  Columns: [0x0028, 0x0011, 'US'],
  PixelSpacing: [0x0028, 0x0030, 'DS'],
  BitsAllocated: [0x0028, 0x0100, 'US'],
  BitsStored: [0x0028, 0x0101, 'US'],
  PixelRepresentation: [0x0028, 0x0103, 'US'],
  RescaleIntercept: [0x0028, 0x1052, 'DS'],
  RescaleSlope: [0x0028, 0x1053, 'DS'],
  LossyImageCompression: [0x0028, 0x2110, 'CS'],
  LossyImageCompressionRatio: [0x0028, 0x2112, 'DS'],
  LossyImageCompressionMethod: [0x0028, 0x2114, 'CS'],
} as const satisfies Record<string, readonly [number, number, string]>;

export type DicomKeyword = keyof typeof DICOM_TAGS;
