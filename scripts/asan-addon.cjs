// Preloaded by scripts/asan.sh (NODE_OPTIONS=--require, so the ranks a test starts get it too):
// whoever loads native/build/Release/lesionseg_native.node gets the AddressSanitizer build in
// native/build-asan instead. Test tooling only; the CLI never loads this.
'use strict';
const path = require('node:path');
const normal = path.resolve(__dirname, '../native/build/Release/lesionseg_native.node');
const asan = path.resolve(__dirname, '../native/build-asan/Release/lesionseg_native.node');
const dlopen = process.dlopen;
process.dlopen = function (module, filename, ...rest) {
  return dlopen.call(this, module, path.resolve(filename) === normal ? asan : filename, ...rest);
};
