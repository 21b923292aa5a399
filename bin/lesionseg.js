#!/usr/bin/env node
// Entry point of the `lesionseg` command: runs the compiled CLI (npm run setup builds it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('lesionseg is not built yet: run `npm run setup` in the checkout first\n');
  process.exit(1);
}
await import(main.href);
