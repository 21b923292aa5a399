/** Option value parsers shared by the commands: a bad value is an InputError naming the option. */
import { InputError } from '../core/index.js';

/** An integer option at least `minimum` (decimal digits only: '1e3', '2.0' and '' are refused). */
export function integer(name: string, minimum: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < minimum) {
      throw new InputError(`--${name} must be an integer >= ${minimum}, got '${value}'`, { code: 'bad-arguments' });
    }
    return n;
  };
}

/** An integer option at least 1. */
export const positiveInt = (name: string) => integer(name, 1);
