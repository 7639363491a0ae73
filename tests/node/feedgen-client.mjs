// Calls Meadow's feed server with the official @atproto/api client (the
// generated app.bsky.feed.* methods; responses are validated by the client
// against the official lexicons, so a wrong shape fails the call).
//
//   node feedgen-client.mjs errors <base> <feedUri> <unknownFeedUri> <serviceDid>
//       every bad parameter -> status + XRPC error name; UnknownFeed;
//       describeFeedGenerator lists feedUri; prints "N passed, N failed"
//   node feedgen-client.mjs page <base> <feedUri> <limit>
//       pages through the feed; prints one post URI per line on stdout and
//       "pages=<n> sizes=<a,b,...>" on stderr
import { AtpAgent } from '@atproto/api'

const [mode, base, ...args] = process.argv.slice(2)
const agent = new AtpAgent({ service: base })
let pass = 0
let fail = 0
const ok = (name) => {
  pass++
  if (process.env.TEST_VERBOSE) console.log(`ok ${name}`)
}
const bad = (name, why) => {
  fail++
  console.log(`not ok ${name}\n  ${why}`)
}

async function expectError(name, params, status, error) {
  try {
    const res = await agent.app.bsky.feed.getFeedSkeleton(params)
    bad(name, `succeeded: ${JSON.stringify(res.data).slice(0, 200)}`)
  } catch (e) {
    if (e.status === status && e.error === error && typeof e.message === 'string') ok(name)
    else bad(name, `got status=${e.status} error=${e.error} message=${e.message}`)
  }
}

async function errors([feed, unknownFeed, serviceDid]) {
  await expectError('missing feed', {}, 400, 'InvalidRequest')
  await expectError('feed not an at-uri', { feed: 'https://example.com/feed' }, 400, 'InvalidRequest')
  await expectError('feed handle authority',
    { feed: 'at://alice.example.com/app.bsky.feed.generator/0a1b2c3d' }, 400, 'InvalidRequest')
  await expectError('feed wrong collection',
    { feed: feed.replace('app.bsky.feed.generator', 'app.bsky.feed.post') }, 400, 'InvalidRequest')
  await expectError('feed rkey not 8 hex', { feed: feed.slice(0, -1) + 'G' }, 400, 'InvalidRequest')
  await expectError('feed rkey uppercase', { feed: feed.slice(0, -8) + 'ABCDEF01' }, 400, 'InvalidRequest')
  await expectError('limit 0', { feed, limit: 0 }, 400, 'InvalidRequest')
  await expectError('limit 101', { feed, limit: 101 }, 400, 'InvalidRequest')
  await expectError('limit -5', { feed, limit: -5 }, 400, 'InvalidRequest')
  await expectError('limit NaN', { feed, limit: 'abc' }, 400, 'InvalidRequest')
  await expectError('cursor with slash', { feed, cursor: 'ab/cd' }, 400, 'InvalidRequest')
  await expectError('cursor too long', { feed, cursor: 'A'.repeat(100) }, 400, 'InvalidRequest')
  await expectError('cursor undecodable', { feed, cursor: 'AAAA' }, 400, 'InvalidRequest')
  await expectError('unknown feed', { feed: unknownFeed }, 400, 'UnknownFeed')
  try {
    await agent.app.bsky.feed.getFeedSkeleton({ feed: unknownFeed })
  } catch (e) {
    if (e.constructor.name === 'UnknownFeedError') ok('UnknownFeedError class')
    else bad('UnknownFeedError class', `got ${e.constructor.name}`)
  }

  // limits at the edges succeed and respect the limit
  for (const limit of [1, 100]) {
    try {
      const res = await agent.app.bsky.feed.getFeedSkeleton({ feed, limit })
      if (res.success && Array.isArray(res.data.feed) && res.data.feed.length <= limit) ok(`limit ${limit}`)
      else bad(`limit ${limit}`, JSON.stringify(res.data).slice(0, 200))
    } catch (e) {
      bad(`limit ${limit}`, `${e.status} ${e.error} ${e.message}`)
    }
  }

  try {
    const res = await agent.app.bsky.feed.describeFeedGenerator()
    const uris = res.data.feeds.map((f) => f.uri)
    if (res.data.did === serviceDid) ok('describe did')
    else bad('describe did', res.data.did)
    if (uris.includes(feed) && !uris.includes(unknownFeed)) ok('describe feeds')
    else bad('describe feeds', JSON.stringify(uris))
  } catch (e) {
    bad('describeFeedGenerator', `${e.status} ${e.error} ${e.message}`)
  }

  // A method the server does not implement, and a wrong verb, through the client's XRPC layer.
  try {
    await agent.app.bsky.feed.getTimeline({})
    bad('unknown method', 'succeeded')
  } catch (e) {
    if (e.status === 501 && e.error === 'MethodNotImplemented') ok('unknown method')
    else bad('unknown method', `${e.status} ${e.error}`)
  }
  const post = await fetch(`${base}/xrpc/app.bsky.feed.getFeedSkeleton?feed=${encodeURIComponent(feed)}`,
    { method: 'POST' })
  const pj = await post.json()
  if (post.status === 400 && pj.error === 'InvalidRequest') ok('wrong verb')
  else bad('wrong verb', `${post.status} ${JSON.stringify(pj)}`)

  console.log(`${pass} passed, ${fail} failed`)
  process.exit(fail ? 1 : 0)
}

async function page([feed, limitText]) {
  const limit = Number(limitText)
  const uris = []
  const sizes = []
  let cursor
  for (let i = 0; i < 100000; i++) {
    const res = await agent.app.bsky.feed.getFeedSkeleton({ feed, limit, cursor })
    sizes.push(res.data.feed.length)
    for (const item of res.data.feed) uris.push(item.post)
    cursor = res.data.cursor
    if (!cursor) break
  }
  process.stdout.write(uris.map((u) => u + '\n').join(''))
  process.stderr.write(`pages=${sizes.length} sizes=${sizes.join(',')}\n`)
}

if (mode === 'errors') await errors(args)
else if (mode === 'page') await page(args)
else {
  console.error('usage: feedgen-client.mjs errors|page <base> ...')
  process.exit(2)
}
