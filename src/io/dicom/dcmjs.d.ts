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
        namifyDataset(dataset: NaturalDataset): NaturalDataset;
      };
      datasetToDict(dataset: NaturalDataset): DicomDictInstance;
    };
    /** dcmjs's own SEG writer (tests read its SEGs back as another tool's). */
    normalizers: { Normalizer: { normalizeToDataset(datasets: NaturalDataset[]): Record<string, any> } };
    derivations: {
      Segmentation: new (datasets: NaturalDataset[]) => {
        dataset: Record<string, any>;
        setNumberOfFrames(count: number): void;
        addSegment(segment: NaturalDataset, pixelData: Uint8Array, referencedFrameNumbers: number[]): void;
        bitPackPixelData(): void;
      };
    };
  };
  export default dcmjs;
}
