/**
 * Our canonical weights as the state dict dynamic-network-architectures' networks return, alias
 * keys included, so that `load_state_dict(strict=True)` accepts it: each conv block
 * (ConvDropoutNormReLU: `<block>.conv.*`, `<block>.norm.*`) also lists its parameters under
 * `<block>.all_modules.0.*` (the conv) and `<block>.all_modules.1.*` (the norm), right after its
 * own, and the decoder, which holds the encoder as a submodule, lists the whole encoder again
 * under `decoder.encoder.*` before its own parameters. That is the inverse of io's canonicalTwin
 * (the reader checks each alias against its twin and drops it); aliases share their twin's
 * values (and storage, when written by PthBuilder), as in PyTorch.
 */
import { canonicalTwin, type SafetensorsEntry } from '../io/index.js';

const BLOCK_PARAMETER = /^(.*)\.(conv|norm)\.([^.]+)$/;

/** The state dict with nnU-Net's alias keys, in the order PyTorch's state_dict() lists them. */
export function withNnunetAliases(canonical: ReadonlyMap<string, SafetensorsEntry>): Map<string, SafetensorsEntry> {
  const withBlocks: [string, SafetensorsEntry][] = [];
  let block: string | null = null;
  let pending: [string, SafetensorsEntry][] = [];
  const flush = (): void => {
    withBlocks.push(...pending);
    pending = [];
  };
  for (const [name, value] of canonical) {
    if (canonicalTwin(name) !== null) throw new RangeError(`'${name}' is already an alias key; pass canonical names only`);
    const match = BLOCK_PARAMETER.exec(name);
    const owner = match === null ? null : match[1]!;
    if (owner !== block) {
      flush();
      block = owner;
    }
    withBlocks.push([name, value]);
    if (match !== null) pending.push([`${match[1]}.all_modules.${match[2] === 'conv' ? 0 : 1}.${match[3]}`, value]);
  }
  flush();
  const out = new Map<string, SafetensorsEntry>();
  const encoder = withBlocks.filter(([name]) => name.startsWith('encoder.'));
  let copied = false;
  for (const [name, value] of withBlocks) {
    if (!copied && name.startsWith('decoder.')) {
      for (const [encoderName, encoderValue] of encoder) out.set(`decoder.${encoderName}`, encoderValue);
      copied = true;
    }
    out.set(name, value);
  }
  for (const name of out.keys()) {
    const twin = canonicalTwin(name);
    if (twin !== null && !out.has(twin) && !out.has(canonicalTwin(twin) ?? '')) throw new RangeError(`alias '${name}' has no canonical twin`);
  }
  return out;
}
