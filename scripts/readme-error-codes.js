#!/usr/bin/env node
/**
 * Writes the error-code table of README.md (between <!-- error-codes:start --> and
 * <!-- error-codes:end -->) from ERROR_CODES in lib/errors.ts (run after `npm run build:ts`).
 * test/cli.words.test.ts fails when the two differ.
 */
const fs = require('fs');
const path = require('path');
const { errorCodesMarkdown } = require('../dist/lib/errors');

const readme = path.join(__dirname, '..', 'README.md');
const text = fs.readFileSync(readme, 'utf8');
const start = '<!-- error-codes:start -->';
const end = '<!-- error-codes:end -->';
const i = text.indexOf(start);
const j = text.indexOf(end);
if (i < 0 || j < i) throw new Error(`README.md has no ${start} ... ${end} section`);
fs.writeFileSync(readme, `${text.slice(0, i + start.length)}\n${errorCodesMarkdown()}\n${text.slice(j)}`);
console.log('README.md: error-code table written');
