// gen_tokenizer_vectors.mjs — writes tests/fixtures/tokenizer/hf_vectors.jsonl, the ids and decoded
// texts that Hugging Face `tokenizers` (the reference) gives for texts beyond llama.cpp's vectors:
// other scripts, code, emoji, whitespace runs, added tokens inside text, random mixtures; for the
// three shared tokenizers and for two Metaspace layouts derived from Llama 2's file (tests/
// test_tokenizer.c derives them the same way: see `variants` below).
//
//   npm install --prefix /tmp/tokref tokenizers@0.23.2   (the official Node binding of the Rust library)
//   NODE_PATH=/tmp/tokref/node_modules node scripts/gen_tokenizer_vectors.mjs ../shared/tokenizers \
//       > tests/fixtures/tokenizer/hf_vectors.jsonl
//
// Each line: {"tokenizer": NAME, "text": TEXT, "ids": [...], "decoded": decode(ids, skip_special=false)}.
import fs from 'fs';
import os from 'os';
import path from 'path';
import { createRequire } from 'module';

const require = createRequire(import.meta.url);
const { Tokenizer } = require('tokenizers');
const shared = process.argv[2] || '../shared/tokenizers';

const fixed = [
  'Hello world', ' Hello world', '  leading', 'trailing  ', '\n\n\nnewlines\n\n', '\t\ttabs\t', ' \u00a0nbsp\u00a0 ',
  'a\u3000b\u3000\u3000c', 'Привет, мир! Как дела?', 'Γειά σου Κόσμε', 'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया',
  'こんにちは世界、元気ですか？', '你好，世界！我是一个程序。', '안녕하세요 세계', 'ภาษาไทย ง่ายมาก', 'Tiếng Việt có dấu: Cửa Việt',
  'e\u0301cole cafe\u0301 n\u0303 \u1100\u1161\u11a8', 'ﬁ ligature Ａｂｃ full-width ½ ⅓',
  'def foo(x):\n    return x**2  # square\n\nclass A:\n\tpass\n',
  'int main(void) { printf("%d\\n", 42); return 0; }', 'for (i = 0; i < 10; ++i) {\n        a[i] += b[i];\n    }',
  '<html><body><div class="x">Hi</div></body></html>', "SELECT * FROM t WHERE a >= 3 AND b <> 'x';",
  'https://example.com/path?q=1&r=two#frag', '🦙🦙🦙 🚀 👨‍👩‍👧‍👦 🏳️‍🌈 ✅❌ 😶‍🌫️', 'emoji🙂inside🙃words',
  '1234567890 3.14159 1e-10 0x1F -42', "I've been 'told he's there, 'RE you sure? 'M not sure I'll",
  '      ', '\r\n\r\n', ' \n \n', 'a  b   c    d     e', '____----====', '...!!!???', 'ALL CAPS SHOUTING',
  'MiXeD CaSe WoRdS', '<s>inside</s> text <unk>', '<|begin_of_text|>Hi<|eot_id|>',
  '<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n', '\u0085nel\u0085', '\u2028line sep\u2029para',
  '\u200bzero\u200bwidth\ufeffbom', '\u180emongolian', "ſ 'ſ 'S 'K \u212a", 'Ⅻ ⅷ ① ²³', 'x'.repeat(300),
  'ab'.repeat(200), ' '.repeat(50) + 'x', '😀'.repeat(40), '中'.repeat(100),
];
const alphabet = [...'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 \t\n\r\'"!?.,;:-_()[]{}<>/\\|@#$%^&*+=~`',
  ...'éèüößçñåøłžšđ€£¥©®°±µ¶·¿¡', ...'абвгдежзийклмнопрстуфхцчшщъыьэюяЁ', ...'中文字日本語漢字かなカタカナ한국어ไทย',
  '🦙', '😀', '👍', '🏽', '\u200d', '\u0301', '\u0308', '\u00a0', '\u3000', '\u2003', '\u0085', '️', '<s>', '</s>',
  '<|im_start|>', '<|eot_id|>', '▁'];
let seed = 12345;
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
const texts = [...fixed];
for (let k = 0; k < 60; k++) {
  let t = '';
  for (let n = rand(41); n > 0; n--) t += alphabet[rand(alphabet.length)];
  texts.push(t);
}

const metaspace = (scheme, split) => ({ type: 'Metaspace', replacement: '\u2581', prepend_scheme: scheme, split });
const variants = {
  llama3: (j) => j,
  qwen3: (j) => j,
  llama2: (j) => j,
  // Mistral v0.3 / transformers legacy=false layout: no normalizer, Metaspace "first", no split.
  'llama2-metaspace-first': (j) => ({ ...j, normalizer: null, pre_tokenizer: metaspace('first', false) }),
  // The older layout: Metaspace "always" with split, and the Metaspace decoder.
  'llama2-metaspace-split': (j) => ({ ...j, normalizer: null, pre_tokenizer: metaspace('always', true),
                                      decoder: metaspace('always', true) }),
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tokvec-'));
for (const [name, derive] of Object.entries(variants)) {
  const base = name.split('-')[0];
  const file = path.join(tmp, name + '.json');
  fs.writeFileSync(file, JSON.stringify(derive(JSON.parse(fs.readFileSync(path.join(shared, base, 'tokenizer.json'), 'utf8')))));
  const tok = Tokenizer.fromFile(file);
  for (const text of texts) {
    const ids = (await tok.encode(text, null, { addSpecialTokens: false })).getIds();
    const decoded = await tok.decode(ids, false);
    console.log(JSON.stringify({ tokenizer: name, text, ids, decoded }));
  }
}
fs.rmSync(tmp, { recursive: true });
