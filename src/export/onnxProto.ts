/**
 * A protobuf ENCODER for the few ONNX messages an exported network needs (ModelProto, GraphProto,
 * NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto, TensorShapeProto,
 * OperatorSetIdProto, StringStringEntryProto), with the field numbers of the ONNX spec's
 * onnx/onnx.proto (proto2 syntax; the numbers have not changed since IR version 3).
 *
 * Why our own and not a protobuf library: lesionseg only WRITES ONNX; onnxruntime (and any other
 * consumer) parses it. An encoder of ~150 lines for ten fixed messages needs no dependency, no
 * generated code and no .proto at run time, and has no parsing attack surface, because nothing here
 * reads protobuf. protobufjs, the JavaScript library both candidates come down to, had
 * prototype-pollution vulnerabilities in its parsing and reflection code (CVE-2022-25878,
 * CVE-2023-36665); onnx-proto (generated ONNX classes) pins the old protobufjs 6 line, so it would
 * bring those parsers in, on an unmaintained major, for a format we never decode.
 *
 * Encoding (protobuf wire format): a field is a varint key `(number << 3) | wireType` followed by
 * a varint (wire type 0: int32, int64, enums), 4 little-endian bytes (wire type 5: float), or a
 * varint length and that many bytes (wire type 2: strings, bytes, embedded messages). Repeated
 * scalars are written unpacked, as proto2 declares them (`dims`, `ints`); every parser accepts that.
 * A message is kept as a list of chunks, so the weights (raw_data) are copied once, at the end.
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** The most a protobuf message may hold: parsers take a signed 32-bit length (2 GiB - 1). */
export const PROTOBUF_MAX_BYTES = 2 ** 31 - 1;

const utf8 = new TextEncoder();

/** One protobuf message under construction. */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  /** Small writes (keys, varints, floats) gather here until a large chunk or message is appended. */
  private pending: number[] = [];
  private flushedBytes = 0;

  get byteLength(): number {
    return this.flushedBytes + this.pending.length;
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.flushedBytes += this.pending.length;
    this.pending = [];
  }

  private appendChunk(bytes: Uint8Array): void {
    this.flush();
    if (bytes.byteLength === 0) return;
    this.chunks.push(bytes);
    this.flushedBytes += bytes.byteLength;
  }

  /** Unsigned varint of a non-negative safe integer, or of a bigint in [0, 2^64). */
  private varint(value: number | bigint): void {
    let v = BigInt(value);
    if (v < 0n || v >= 1n << 64n) throw new RangeError(`varint out of range: ${v}`);
    if (v < 0x80n) {
      this.pending.push(Number(v));
      return;
    }
    while (v >= 0x80n) {
      this.pending.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.pending.push(Number(v));
  }

  private key(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }

  /** int64 / int32 / enum: negative values as their 64-bit two's complement (10 bytes), as protobuf does. */
  int(field: number, value: number): this {
    if (!Number.isSafeInteger(value)) throw new RangeError(`field ${field}: ${value} is not an integer`);
    this.key(field, WIRE_VARINT);
    this.varint(value >= 0 ? value : BigInt.asUintN(64, BigInt(value)));
    return this;
  }

  /** Repeated int64, unpacked (one key per element). */
  ints(field: number, values: readonly number[]): this {
    for (const value of values) this.int(field, value);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, WIRE_FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.pending.push(...bytes);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** Length-delimited bytes; the array is kept, not copied, until `toBytes`. */
  bytes(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LENGTH_DELIMITED);
    this.varint(value.byteLength);
    if (value.byteLength < 64) this.pending.push(...value);
    else this.appendChunk(value);
    return this;
  }

  /** An embedded message (its chunks are shared, not copied). */
  message(field: number, inner: ProtoWriter): this {
    this.key(field, WIRE_LENGTH_DELIMITED);
    this.varint(inner.byteLength);
    inner.flush();
    this.flush();
    this.chunks.push(...inner.chunks);
    this.flushedBytes += inner.flushedBytes;
    return this;
  }

  /** The encoded message in one array. */
  toBytes(): Uint8Array {
    this.flush();
    if (this.flushedBytes > PROTOBUF_MAX_BYTES) {
      throw new RangeError(`the message is ${this.flushedBytes} bytes; protobuf (and so ONNX without external data) holds at most ${PROTOBUF_MAX_BYTES}`);
    }
    const out = new Uint8Array(this.flushedBytes);
    let offset = 0;
    for (const chunk of this.chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }
}

// --- The ONNX messages (onnx.proto field numbers) --------------------------------------------------

/** TensorProto.DataType.FLOAT, the only element type our graphs use. */
export const ONNX_FLOAT = 1;

const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

export type OnnxAttribute =
  | { name: string; kind: 'float'; value: number }
  | { name: string; kind: 'int'; value: number }
  | { name: string; kind: 'string'; value: string }
  | { name: string; kind: 'ints'; value: readonly number[] };

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: readonly OnnxAttribute[];
}

/** A float32 initializer: `data` is the little-endian float32 bytes of a row-major tensor of `dims`. */
export interface OnnxInitializer {
  name: string;
  dims: readonly number[];
  data: Uint8Array;
}

/** A graph input or output: float32 with these dimensions (a string is a symbolic dimension). */
export interface OnnxValueInfo {
  name: string;
  dims: readonly (number | string)[];
  docString?: string;
}

export interface OnnxModel {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
  graph: { name: string; nodes: readonly OnnxNode[]; initializers: readonly OnnxInitializer[]; inputs: readonly OnnxValueInfo[]; outputs: readonly OnnxValueInfo[] };
  metadata: Readonly<Record<string, string>>;
}

function attributeProto(attribute: OnnxAttribute): ProtoWriter {
  // AttributeProto: name 1, f 2, i 3, s 4, ints 8, type 20.
  const w = new ProtoWriter().string(1, attribute.name);
  switch (attribute.kind) {
    case 'float': w.float(2, attribute.value).int(20, ATTRIBUTE_TYPE.FLOAT); break;
    case 'int': w.int(3, attribute.value).int(20, ATTRIBUTE_TYPE.INT); break;
    case 'string': w.string(4, attribute.value).int(20, ATTRIBUTE_TYPE.STRING); break;
    case 'ints': w.ints(8, attribute.value).int(20, ATTRIBUTE_TYPE.INTS); break;
  }
  return w;
}

function nodeProto(node: OnnxNode): ProtoWriter {
  // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5.
  const w = new ProtoWriter();
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  w.string(3, node.name).string(4, node.opType);
  for (const attribute of node.attributes ?? []) w.message(5, attributeProto(attribute));
  return w;
}

function tensorProto(initializer: OnnxInitializer): ProtoWriter {
  // TensorProto: dims 1, data_type 2, name 8, raw_data 9.
  const count = initializer.dims.reduce((a, b) => a * b, 1);
  if (initializer.data.byteLength !== count * 4) {
    throw new RangeError(`initializer ${initializer.name}: ${initializer.data.byteLength} bytes for dims [${initializer.dims.join(', ')}] (float32 needs ${count * 4})`);
  }
  return new ProtoWriter().ints(1, initializer.dims).int(2, ONNX_FLOAT).string(8, initializer.name).bytes(9, initializer.data);
}

function valueInfoProto(value: OnnxValueInfo): ProtoWriter {
  // TensorShapeProto.Dimension: dim_value 1, dim_param 2; TensorShapeProto: dim 1.
  const shape = new ProtoWriter();
  for (const dim of value.dims) shape.message(1, typeof dim === 'number' ? new ProtoWriter().int(1, dim) : new ProtoWriter().string(2, dim));
  // TypeProto.Tensor: elem_type 1, shape 2; TypeProto: tensor_type 1.
  const type = new ProtoWriter().message(1, new ProtoWriter().int(1, ONNX_FLOAT).message(2, shape));
  // ValueInfoProto: name 1, type 2, doc_string 3.
  const w = new ProtoWriter().string(1, value.name).message(2, type);
  if (value.docString !== undefined) w.string(3, value.docString);
  return w;
}

/** The serialized ModelProto. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  // GraphProto: node 1, name 2, initializer 5, input 11, output 12.
  const graph = new ProtoWriter();
  for (const node of model.graph.nodes) graph.message(1, nodeProto(node));
  graph.string(2, model.graph.name);
  for (const initializer of model.graph.initializers) graph.message(5, tensorProto(initializer));
  for (const input of model.graph.inputs) graph.message(11, valueInfoProto(input));
  for (const output of model.graph.outputs) graph.message(12, valueInfoProto(output));
  // ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7,
  // opset_import 8 (OperatorSetIdProto: domain 1, version 2; the default domain is ""), metadata_props 14
  // (StringStringEntryProto: key 1, value 2).
  const w = new ProtoWriter().int(1, model.irVersion).string(2, model.producerName).string(3, model.producerVersion);
  if (model.docString !== undefined) w.string(6, model.docString);
  w.message(7, graph).message(8, new ProtoWriter().string(1, '').int(2, model.opsetVersion));
  for (const [key, value] of Object.entries(model.metadata)) w.message(14, new ProtoWriter().string(1, key).string(2, value));
  return w.toBytes();
}
