/**
 * The machine's resources as checks that run before any work: whether the device a command is
 * asked to use exists, and whether an estimated memory need fits a limit. The CUDA device count
 * comes from the tensor layer (cudaDeviceCount), passed in so that core stays free of the addon.
 */
import { InputError } from './errors.js';
import { formatDevice, type Device } from './device.js';

/**
 * Throws InputError (code 'device-unavailable', naming the option) unless `device` is the CPU or a
 * CUDA device index below `cudaDevices` (what libtorch reports on this machine).
 */
export function assertDeviceAvailable(device: Device, cudaDevices: number, option = '--device'): void {
  if (device.type === 'cpu') return;
  if (cudaDevices <= 0) {
    throw new InputError(`${option} ${formatDevice(device)}: no CUDA device is available here (libtorch sees none): use --device cpu`, { code: 'device-unavailable' });
  }
  if (device.index >= cudaDevices) {
    const valid = Array.from({ length: cudaDevices }, (_, i) => `cuda:${i}`).join(', ');
    throw new InputError(`${option} ${formatDevice(device)}: this machine has ${cudaDevices} CUDA device(s) (${valid})`, { code: 'device-unavailable' });
  }
}

export const BYTES_PER_GIB = 1024 ** 3;

/** `bytes` in GiB with three significant digits, for messages. */
export function formatGib(bytes: number): string {
  return `${Number((bytes / BYTES_PER_GIB).toPrecision(3))} GiB`;
}
