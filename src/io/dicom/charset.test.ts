/**
 * decodeDicomText against the standard's own examples: PS3.5 Annex H (Japanese: ISO 2022 IR 87 and
 * IR 13 + IR 87 person names), Annex K (GB18030 person name), and single-byte ISO 8859-5 (Cyrillic)
 * bytes from the ISO 8859-5 code table; sets and escape sequences it does not know are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError } from '../../core/index.js';
import { characterSetTerms, checkCharacterSet, decodeDicomText } from './charset.js';

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((part) => (typeof part === 'string' ? [...Buffer.from(part, 'latin1')] : part)));
const ESC = '\u001b';
const decode = (value: Uint8Array, set: string, vr = 'PN'): string => {
  const terms = characterSetTerms(set);
  checkCharacterSet(terms, 'x.dcm');
  return decodeDicomText(value, terms, vr, 'x.dcm');
};

test('PS3.5 H.3.1: ISO 2022 IR 87 (JIS X 0208 after ESC $ B, ASCII back at each delimiter) decodes to the example name', () => {
  const value = bytes('Yamada^Tarou=', `${ESC}$B;3ED${ESC}(B^${ESC}$BB@O:${ESC}(B=${ESC}$B$d$^$@${ESC}(B^${ESC}$B$?$m$&${ESC}(B`);
  assert.equal(decode(value, '\\ISO 2022 IR 87'), 'Yamada^Tarou=山田^太郎=やまだ^たろう');
});

test('PS3.5 H.3.2: ISO 2022 IR 13 + IR 87 (half-width katakana in G1, JIS X 0208, JIS X 0201 romaji) decodes to the example name', () => {
  const value = bytes([0xd4, 0xcf, 0xc0, 0xde], '^', [0xc0, 0xdb, 0xb3], `=${ESC}$B;3ED${ESC}(J^${ESC}$BB@O:${ESC}(J=${ESC}$B$d$^$@${ESC}(J^${ESC}$B$?$m$&${ESC}(J`);
  assert.equal(decode(value, 'ISO 2022 IR 13\\ISO 2022 IR 87'), 'ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう');
});

test('PS3.5 K.2: GB18030 decodes Wang^XiaoDong=王^小东; ISO_IR 144 decodes ISO 8859-5 Cyrillic; ISO_IR 192 UTF-8', () => {
  assert.equal(decode(bytes('Wang^XiaoDong=', [0xcd, 0xf5], '^', [0xd0, 0xa1, 0xb6, 0xab], '='), 'GB18030'), 'Wang^XiaoDong=王^小东=');
  // ISO 8859-5: Л 0xBB, ю 0xEE, к 0xDA (А is 0xB0, а 0xD0, alphabetical).
  assert.equal(decode(bytes([0xbb, 0xee, 0xda]), 'ISO_IR 144', 'LO'), 'Люк');
  assert.equal(decode(Uint8Array.from(Buffer.from('Ærøskøbing^Åse', 'utf8')), 'ISO_IR 192'), 'Ærøskøbing^Åse');
  // No Specific Character Set, or ISO_IR 100: ISO 8859-1 (0xC4 is Ä).
  assert.equal(decode(bytes('M', [0xc4], 'RZ'), ''), 'MÄRZ');
  assert.equal(decode(bytes('M', [0xc4], 'RZ'), 'ISO_IR 100'), 'MÄRZ');
});

test('sets, escape sequences and bytes that cannot be decoded are refused naming the character set, never guessed', () => {
  const refused = (run: () => unknown, message: RegExp) => assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof InputError, String(error));
    assert.equal(error.code, 'dicom-character-set');
    assert.match(error.message, message);
    return true;
  });
  refused(() => checkCharacterSet(characterSetTerms('ISO_IR 999'), 'x.dcm'), /Specific Character Set \(0008,0005\) "ISO_IR 999": "ISO_IR 999" is not a character set lesionseg decodes/);
  refused(() => checkCharacterSet(characterSetTerms('ISO_IR 100\\ISO_IR 144'), 'x.dcm'), /"ISO_IR 100" is not a character set lesionseg decodes/);
  refused(() => decode(bytes(`A${ESC}$(Q!!`), '\\ISO 2022 IR 87'), /the escape sequence ESC "\$\(Q" at byte 1 is not supported/);
  refused(() => decode(bytes([0xff, 0xfe]), 'ISO_IR 192'), /the bytes are not valid ISO_IR 192/);
  refused(() => decode(bytes('A', [0xc4]), '\\ISO 2022 IR 87'), /byte 0xc4 at 1 with no G1 set invoked/);
  refused(() => decode(bytes(`${ESC}$B;3E`), '\\ISO 2022 IR 87'), /a two-byte set ends after an odd number of bytes/);
});
