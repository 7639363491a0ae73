// The reference verdicts for the lexicon cross-check: loads every lexicon
// document of the given directories into @atproto/lexicon's Lexicons, then
// for each line of a JSONL corpus ({"id","nsid","record",...}) converts the
// record from JSON to the lex data model (jsonToLex: $link, $bytes, blobs)
// and calls Lexicons.assertValidRecord. Prints one line per record:
// "<id>\t<valid|invalid>\t<message>".
//   node lexicon-judge.mjs CORPUS.jsonl DIR...
import fs from 'node:fs'
import path from 'node:path'
import { Lexicons, jsonToLex } from '@atproto/lexicon'

const [corpus, ...dirs] = process.argv.slice(2)
const docs = []
for (const dir of dirs) {
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    docs.push(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')))
  }
}
const lex = new Lexicons(docs)
const out = []
for (const line of fs.readFileSync(corpus, 'utf8').split('\n')) {
  if (!line.trim()) continue
  const c = JSON.parse(line)
  let verdict = 'valid'
  let msg = ''
  try {
    lex.assertValidRecord(c.nsid, jsonToLex(c.record))
  } catch (e) {
    verdict = 'invalid'
    msg = String(e.message).replace(/[\t\n]/g, ' ')
  }
  out.push(`${c.id}\t${verdict}\t${msg}`)
}
process.stdout.write(out.join('\n') + '\n')
