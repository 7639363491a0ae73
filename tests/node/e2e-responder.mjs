// A tiny HTTP responder on 127.0.0.1 standing in front of a real PDS: it
// answers the first COUNT requests itself with STATUS (429 with a
// ratelimit-reset header RESET_IN seconds ahead, or a 5xx), then forwards
// every later request to UPSTREAM unchanged. COUNT -1 = always answer.
// STATUS 200 answers a 9 MiB JSON body (over the client's cap). Each request is logged to LOG (one line: method path status), so tests can
// count attempts.
//
//   node e2e-responder.mjs --upstream URL --status 429 --count 2 --reset-in 1 --log FILE
// prints `READY <port>`.
import fs from 'node:fs'
import http from 'node:http'

const args = process.argv.slice(2)
const opt = (n, d) => {
  const i = args.indexOf(n)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : d
}
const upstream = opt('--upstream', '')
const status = Number(opt('--status', '429'))
const count = Number(opt('--count', '-1'))
const resetIn = Number(opt('--reset-in', '1'))
const log = opt('--log', '')
// --lose PATH: requests whose path contains PATH (the first COUNT of them) are
// forwarded to the upstream, which acts on them, but answered with STATUS:
// the answer is "lost", as when a proxy fails after the PDS committed.
const lose = opt('--lose', '')
let seen = 0

const note = (line) => {
  if (log) fs.appendFileSync(log, line + '\n')
}

// --relay-shim: also answer com.atproto.sync.listReposByCollection (which a
// relay serves and a PDS does not) from the upstream PDS's own listRepos and
// listRecords, so the rebuild's relay mode can be tested against it.
const relayShim = args.includes('--relay-shim')
const shimListByCollection = async (url) => {
  const collection = url.searchParams.get('collection')
  const repos = []
  let cursor
  do {
    const q = new URLSearchParams({ limit: '1000', ...(cursor ? { cursor } : {}) })
    const page = await (await fetch(`${upstream}/xrpc/com.atproto.sync.listRepos?${q}`)).json()
    for (const r of page.repos) {
      const q2 = new URLSearchParams({ repo: r.did, collection, limit: '1' })
      const recs = await (await fetch(`${upstream}/xrpc/com.atproto.repo.listRecords?${q2}`)).json()
      if (recs.records && recs.records.length > 0) repos.push({ did: r.did })
    }
    cursor = page.repos.length ? page.cursor : undefined
  } while (cursor)
  return { repos }
}

// --did-web ID: also serve /.well-known/did.json, a DID document for ID whose
// #atproto_pds service is UPSTREAM (the test's did:web identity).
const didWeb = opt('--did-web', '')

const server = http.createServer(async (req, res) => {
  if (didWeb && req.url === '/.well-known/did.json') {
    const doc = {
      '@context': ['https://www.w3.org/ns/did/v1'],
      id: didWeb.replace('PORT', String(server.address().port)),
      service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: upstream }],
    }
    note(`${req.method} ${req.url} 200 did-web`)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(doc))
    return
  }
  if (relayShim && req.url.startsWith('/xrpc/com.atproto.sync.listReposByCollection')) {
    const out = await shimListByCollection(new URL(req.url, 'http://x'))
    note(`${req.method} ${req.url} 200 shim`)
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(out))
    return
  }
  const chunks = []
  for await (const c of req) chunks.push(c)
  const body = Buffer.concat(chunks)
  const losing = lose && req.url.includes(lose)
  if (!lose || losing) seen++
  const answerHere = !lose && (count < 0 || seen <= count || !upstream)
  const lost = losing && (count < 0 || seen <= count)
  if (answerHere) {
    const headers = { 'content-type': 'application/json' }
    let err = { error: 'InternalServerError', message: 'Internal Server Error' }
    if (status === 429) {
      const reset = Math.floor(Date.now() / 1000) + resetIn
      Object.assign(headers, {
        'ratelimit-limit': '30',
        'ratelimit-remaining': '0',
        'ratelimit-reset': String(reset),
        'ratelimit-policy': '30;w=300',
      })
      err = { error: 'RateLimitExceeded', message: 'Rate Limit Exceeded' }
    }
    note(`${req.method} ${req.url} ${status}`)
    res.writeHead(status, headers)
    // STATUS 200: an oversized answer (9 MiB of JSON), for the body cap.
    res.end(status === 200 ? JSON.stringify({ x: 'a'.repeat(9 << 20) }) : JSON.stringify(err))
    return
  }
  const headers = { ...req.headers }
  delete headers.host
  delete headers['content-length']
  const up = await fetch(upstream + req.url, {
    method: req.method,
    headers,
    body: req.method === 'GET' || req.method === 'HEAD' ? undefined : body,
  })
  const out = Buffer.from(await up.arrayBuffer())
  if (lost) {
    note(`${req.method} ${req.url} ${up.status} lost ${status}`)
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'InternalServerError', message: 'Internal Server Error' }))
    return
  }
  note(`${req.method} ${req.url} ${up.status}`)
  res.writeHead(up.status, { 'content-type': up.headers.get('content-type') || 'application/json' })
  res.end(out)
})
server.listen(0, '127.0.0.1', () => {
  console.log(`READY ${server.address().port}`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
