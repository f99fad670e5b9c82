// The reference side of test_llama_reference.py: Hugging Face's own
// JavaScript tokenizers (npm @huggingface/tokenizers, the tokenizer.json
// pipeline of transformers.js) on a Llama-style tokenizer.json.
//   node llama_ref.js PACKAGE_DIR TOKENIZER_JSON [--no-added] < texts.hex > ids.txt
// Each line of standard input is a text in hex; its bytes are decoded as
// UTF-8 by Node (U+FFFD for each maximal ill-formed subpart, the WHATWG
// rule) and encoded with add_special_tokens; one line out: the ids,
// comma-separated. --no-added: the file's added_tokens left out, so that
// "<s>" in a text is text (attn without --special).
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const {Tokenizer} = require(path.resolve(process.argv[2]));
const json = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
if (process.argv[4] === '--no-added') json.added_tokens = [];
const tok = new Tokenizer(json, {});
const pre = (json.post_processor || {}).single || [];
const bos = pre.length && pre[0].SpecialToken ? tok.token_to_id(pre[0].SpecialToken.id) : -1;
const out = [];
const rl = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
rl.on('line', (hex) => {
  const text = Buffer.from(hex, 'hex').toString('utf8');
  const ids = tok.encode(text).ids;
  const rest = ids.length && ids[0] === bos ? ids.slice(1) : ids;
  const dec = rest.length ? tok.decode(rest, {clean_up_tokenization_spaces: false}) : '';
  out.push(ids.join(',') + '\t' + Buffer.from(dec, 'utf8').toString('hex'));
});
rl.on('close', () => { process.stdout.write(out.length ? out.join('\n') + '\n' : ''); });
