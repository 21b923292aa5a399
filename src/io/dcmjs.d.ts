/**
 * The part of dcmjs (npm, no bundled types) that lesionseg uses: encoding a naturalized data set
 * (keywords as keys, sequences as arrays of objects) to a DICOM Part 10 file, and reading one back.
 */
declare module 'dcmjs' {
  type NaturalDataset = Record<string, unknown>;
  interface DicomDictInstance {
    meta: NaturalDataset;
    dict: NaturalDataset;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  const dcmjs: {
    /** loglevel loggers; "validation.dcmjs" reports guessed VRs (implicit VR PixelData read as OW). */
    log: { getLogger(name: string): { getLevel(): number; setLevel(level: number | 'silent'): void } };
    data: {
      DicomDict: new (meta: NaturalDataset) => DicomDictInstance;
      DicomMessage: { readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean }): DicomDictInstance };
      DicomMetaDictionary: {
        denaturalizeDataset(dataset: NaturalDataset): NaturalDataset;
        naturalizeDataset(dataset: NaturalDataset): Record<string, any>;
      };
    };
  };
  export default dcmjs;
}
