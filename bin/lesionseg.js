#!/usr/bin/env node
// Entry point of the `lesionseg` command: runs the compiled CLI (npm run setup builds it).
// Exit codes, closed pipes and error messages are handled in src/cli/main.ts; this file only
// reports a checkout that was never built, as one line with status 1 (the set-up's to fix).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(`lesionseg: not built yet (${fileURLToPath(main)} is missing): run \`npm run setup\` in the checkout first\n`);
  process.exit(1);
}
await import(main.href);
