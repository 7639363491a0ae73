// Calls a feed generator the way the Bluesky AppView does, through the
// official client (@atproto/api): app.bsky.feed.getFeedSkeleton.
//
//   node e2e-feed.mjs SERVICE FEED_URI
//       prints the post URIs of the first page (limit 100), one per line
//   node e2e-feed.mjs SERVICE FEED_URI --until has|lacks POST_URI [--timeout-ms N]
//       polls every 50 ms until the feed lists (has) or no longer lists (lacks)
//       the post; exit 0 and prints the milliseconds it took, else exit 1
//   node e2e-feed.mjs SERVICE FEED_URI --never POST_URI [--for-ms N]
//       exit 0 when the post is absent on every poll for N ms
import { AtpAgent } from '@atproto/api'

const [service, feed, ...rest] = process.argv.slice(2)
const opt = (n, d) => {
  const i = rest.indexOf(n)
  return i >= 0 && i + 1 < rest.length ? rest[i + 1] : d
}
const agent = new AtpAgent({ service })
const page = async () => {
  const res = await agent.app.bsky.feed.getFeedSkeleton({ feed, limit: 100 })
  return res.data.feed.map((p) => p.post)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const main = async () => {
  const until = opt('--until', '')
  const never = opt('--never', '')
  if (!until && !never) {
    for (const uri of await page()) console.log(uri)
    return 0
  }
  const start = Date.now()
  if (never) {
    const forMs = Number(opt('--for-ms', '1500'))
    while (Date.now() - start < forMs) {
      const posts = await page()
      if (posts.includes(never)) {
        console.error(`listed after ${Date.now() - start} ms`)
        return 1
      }
      await sleep(50)
    }
    return 0
  }
  const want = rest[rest.indexOf('--until') + 2]
  const timeout = Number(opt('--timeout-ms', '2000'))
  let posts = []
  for (;;) {
    try {
      posts = await page()
    } catch (err) {
      posts = [`(error: ${err.message})`]
    }
    const listed = posts.includes(want)
    if ((until === 'has' && listed) || (until === 'lacks' && !listed)) {
      console.log(Date.now() - start)
      return 0
    }
    if (Date.now() - start > timeout) {
      console.error(`timeout after ${timeout} ms; feed: ${posts.join(' ')}`)
      return 1
    }
    await sleep(50)
  }
}
main()
  .then((rc) => process.exit(rc))
  .catch((err) => {
    console.error('e2e-feed: ' + (err && err.message ? err.message : err))
    process.exit(1)
  })
