// The JavaScript side of bench_tokenizer.py: npm's gpt-3-encoder (GPT-2's
// encoder.py in JavaScript, the reference of tests/tokenizer) timed on the
// same texts as bench-tokenize.
//   node bench_tokenizer.js PACKAGE_DIR UNITS REPEAT [IDS_OUT]
// UNITS: texts separated by NUL bytes, each one encode() call. The fastest of
// REPEAT passes is reported, as one line:
//   bytes=N units=N tokens=N seconds=S mb_per_s=X
// Bytes are the UTF-8 bytes of the input (the same count as the C side).
const fs = require('fs');
const path = require('path');
const enc = require(path.resolve(process.argv[2]));
const buf = fs.readFileSync(process.argv[3]);
const repeat = Math.max(1, parseInt(process.argv[4] || '1', 10));
const idsOut = process.argv[5];
const units = [];
let from = 0;
for (let i = 0; i <= buf.length; i++) {
  if (i === buf.length ? i > from : buf[i] === 0) {
    units.push(buf.subarray(from, i).toString('utf8'));
    from = i + 1;
  }
}
const bytes = buf.length - units.length + (buf.length && buf[buf.length - 1] !== 0 ? 1 : 0);
let best = Infinity, tokens = 0, last = [];
for (let r = 0; r < repeat; r++) {
  let spent = 0;
  tokens = 0;
  last = [];
  for (const text of units) {
    const a = process.hrtime.bigint();
    const ids = enc.encode(text);
    spent += Number(process.hrtime.bigint() - a) / 1e9;
    tokens += ids.length;
    last.push(ids.join(','));
  }
  best = Math.min(best, spent);
}
if (idsOut) fs.writeFileSync(idsOut, last.length ? last.join('\n') + '\n' : '');
console.log(`bytes=${bytes} units=${units.length} tokens=${tokens} seconds=${best.toFixed(6)} ` +
            `mb_per_s=${(bytes / best / 1e6).toFixed(2)}`);
