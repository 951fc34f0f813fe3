// A BERT WordPiece tokenizer that reads a Hugging Face tokenizer.json (taught in 07_browser_inference).
// It does what the `tokenizers` Python package does for all-MiniLM-L6-v2 (BertNormalizer, BertPreTokenizer,
// WordPiece, [CLS] ... [SEP]); tests compare its ids with the Python tokenizer's on the whole corpus.

const CONTROL = /\p{C}/u; // Cc, Cf, Cs, Co, Cn: what the Rust tokenizer calls "other"
const WHITESPACE = /[\s\p{Zs}]/u;
const PUNCTUATION = /[\p{P}!-\/:-@\[-`{-~]/u; // Unicode punctuation plus every ASCII symbol, as BERT does
const MARK = /\p{Mn}/gu;

function isChinese(cp) {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

export class WordPiece {
  constructor(json, maxLength = 256) {
    const model = json.model;
    this.vocab = new Map(Object.entries(model.vocab));
    this.unk = model.unk_token;
    this.prefix = model.continuing_subword_prefix;
    this.maxWordChars = model.max_input_chars_per_word;
    this.lowercase = json.normalizer.lowercase;
    this.maxLength = maxLength;
  }

  // BertNormalizer: drop control characters, map whitespace to spaces, space out CJK, strip accents, lowercase.
  normalize(text) {
    let out = "";
    for (const ch of text) {
      const cp = ch.codePointAt(0);
      if (cp === 0 || cp === 0xfffd || (CONTROL.test(ch) && !"\t\n\r".includes(ch))) continue;
      if (WHITESPACE.test(ch)) out += " ";
      else if (isChinese(cp)) out += ` ${ch} `;
      else out += ch;
    }
    return this.lowercase ? out.normalize("NFD").replace(MARK, "").toLowerCase() : out;
  }

  // BertPreTokenizer: split on whitespace, and make every punctuation character a word of its own.
  words(text) {
    const words = [];
    for (const chunk of text.split(" ")) {
      let current = "";
      for (const ch of chunk) {
        if (PUNCTUATION.test(ch)) {
          if (current) words.push(current);
          words.push(ch);
          current = "";
        } else current += ch;
      }
      if (current) words.push(current);
    }
    return words;
  }

  // WordPiece: the longest vocabulary entry from the left, then "##"-prefixed pieces for the rest.
  pieces(word) {
    const chars = Array.from(word);
    if (chars.length > this.maxWordChars) return [this.unk];
    const out = [];
    for (let start = 0; start < chars.length;) {
      let end = chars.length, found = null;
      while (start < end) {
        const piece = (start > 0 ? this.prefix : "") + chars.slice(start, end).join("");
        if (this.vocab.has(piece)) { found = piece; break; }
        end -= 1;
      }
      if (found === null) return [this.unk];
      out.push(found);
      start = end;
    }
    return out;
  }

  // Token ids with [CLS] and [SEP], truncated to maxLength like the Python side.
  encode(text) {
    const ids = [];
    for (const word of this.words(this.normalize(text))) {
      for (const piece of this.pieces(word)) ids.push(this.vocab.get(piece));
    }
    return [this.vocab.get("[CLS]"), ...ids.slice(0, this.maxLength - 2), this.vocab.get("[SEP]")];
  }
}
