/** Devices as data: parse `cpu`, `cuda`, `cuda:1` once at the edge and pass the result everywhere. */
import { InputError } from './errors.js';

export type Device = { type: 'cpu' } | { type: 'cuda'; index: number };

export const CPU: Device = Object.freeze({ type: 'cpu' });

export function parseDevice(text: string): Device {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === 'cpu') return CPU;
  const match = /^cuda(?::(\d+))?$/.exec(trimmed);
  if (match) return { type: 'cuda', index: match[1] === undefined ? 0 : Number(match[1]) };
  throw new InputError(`unknown device '${text}': use cpu, cuda or cuda:N`, { code: 'bad-device' });
}

export function formatDevice(device: Device): string {
  return device.type === 'cpu' ? 'cpu' : `cuda:${device.index}`;
}
