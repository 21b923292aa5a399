/**
 * dicomweb: a DICOMweb client (QIDO-RS, WADO-RS, STOW-RS) over Node's fetch, its credentials from
 * the environment, and the DICOM JSON model its replies use.
 */
export { DicomwebClient, DICOMWEB_DEFAULTS, type DicomwebOptions } from './client.js';
export { dicomwebAuthFromEnvironment, redactSecrets, DICOMWEB_VARIABLES, type DicomwebAuth } from './auth.js';
export { dicomJsonString, dicomJsonStrings, dicomJsonItems, isUid, TAGS as DICOM_JSON_TAGS, type DicomJson } from './dicom-json.js';
