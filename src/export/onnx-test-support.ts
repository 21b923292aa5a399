/**
 * Test support: a minimal protobuf READER of an ONNX file's top-level ModelProto fields
 * (ir_version 1, producer_name 2, opset_import 8, metadata_props 14), so tests can check what the
 * encoder wrote without a protobuf library. Only tests import this file; lesionseg itself never
 * parses protobuf (onnxProto.ts says why).
 */

interface Field {
  number: number;
  wireType: number;
  varint?: bigint;
  bytes?: Uint8Array;
}

function* fields(buffer: Uint8Array): Generator<Field> {
  let offset = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (offset >= buffer.length) throw new Error('truncated varint');
      const byte = buffer[offset++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
    }
  };
  while (offset < buffer.length) {
    const key = Number(varint());
    const field: Field = { number: key >> 3, wireType: key & 7 };
    if (field.wireType === 0) field.varint = varint();
    else if (field.wireType === 2) {
      const length = Number(varint());
      field.bytes = buffer.subarray(offset, offset + length);
      offset += length;
    } else if (field.wireType === 5) offset += 4;
    else if (field.wireType === 1) offset += 8;
    else throw new Error(`wire type ${field.wireType}`);
    yield field;
  }
}

const text = new TextDecoder();

export interface TopLevelModel {
  irVersion: number;
  producerName: string;
  opsets: { domain: string; version: number }[];
  metadata: Record<string, string>;
}

export function readTopLevelStrings(file: Uint8Array): TopLevelModel {
  const model: TopLevelModel = { irVersion: 0, producerName: '', opsets: [], metadata: {} };
  for (const field of fields(file)) {
    if (field.number === 1) model.irVersion = Number(field.varint);
    else if (field.number === 2) model.producerName = text.decode(field.bytes);
    else if (field.number === 8) {
      const opset = { domain: '', version: 0 };
      for (const inner of fields(field.bytes!)) {
        if (inner.number === 1) opset.domain = text.decode(inner.bytes);
        if (inner.number === 2) opset.version = Number(inner.varint);
      }
      model.opsets.push(opset);
    } else if (field.number === 14) {
      let key = '';
      let value = '';
      for (const inner of fields(field.bytes!)) {
        if (inner.number === 1) key = text.decode(inner.bytes);
        if (inner.number === 2) value = text.decode(inner.bytes);
      }
      model.metadata[key] = value;
    }
  }
  return model;
}
