// Writes every lexicon document that the pinned @atproto/api ships (its
// `schemas`: app.bsky.*, com.atproto.*, chat.bsky.*, tools.ozone.*) into DIR,
// one <id>.json each, for the real-record cross-check: Meadow's generic
// validator loads the same official set the reference uses.
//   node lexicon-export.mjs DIR
import fs from 'node:fs'
import path from 'node:path'
import { schemas } from '@atproto/api'

const dir = process.argv[2]
fs.mkdirSync(dir, { recursive: true })
for (const doc of schemas) {
  fs.writeFileSync(path.join(dir, `${doc.id}.json`), JSON.stringify(doc))
}
console.log(schemas.length)
