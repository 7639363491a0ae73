// Measures "post -> visible in the feed" through the official client: logs in
// once (@atproto/api), then N times writes a post whose text carries the
// community hashtag and polls app.bsky.feed.getFeedSkeleton every POLL_MS
// until the post is listed. The clock starts when createRecord has answered
// (the PDS committed the post), so node start-up and login are not counted.
//
// It also listens to the PDS's own subscribeRepos (live tail) and notes when
// the first frame after each write arrives (nothing else writes meanwhile),
// so the time splits into the PDS's part (its sequencer polls its database,
// backing off to 1 s when idle) and Meadow's part (frame -> listed).
//
//   node e2e-latency.mjs PDS_URL HANDLE PASSWORD SERVICE FEED_URI TAG N [POLL_MS] [TIMEOUT_MS] [PAUSE_MS]
// prints one JSON line {"ms":[...], "frameMs":[...], "meadowMs":[...], "uris":[...]}
// (ms from createRecord's answer); exit 1 when a post is not listed within
// TIMEOUT_MS (default 2000). PAUSE_MS (default 0) idles before each post.
import { AtpAgent, RichText } from '@atproto/api'

const [pds, identifier, password, service, feed, tag, n, pollArg, timeoutArg, pauseArg] =
  process.argv.slice(2)
const poll = Number(pollArg || '20')
const timeout = Number(timeoutArg || '2000')
const pause = Number(pauseArg || '0')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

let lastFrameAt = 0
const listen = () =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(`${pds.replace(/^http/, 'ws')}/xrpc/com.atproto.sync.subscribeRepos`)
    ws.onopen = () => resolve(ws)
    ws.onerror = (e) => reject(new Error('subscribeRepos: ' + (e.message || 'websocket error')))
    ws.onmessage = () => {
      lastFrameAt = performance.now()
    }
  })

const main = async () => {
  const agent = new AtpAgent({ service: pds })
  await agent.login({ identifier, password })
  const feedgen = new AtpAgent({ service })
  // One call first: the client's first call pays for its connection and
  // schema set-up (hundreds of ms on a loaded machine), which is not Meadow's.
  await feedgen.app.bsky.feed.getFeedSkeleton({ feed, limit: 1 })
  const ws = await listen()
  const ms = []
  const frameMs = []
  const meadowMs = []
  const uris = []
  for (let i = 0; i < Number(n); i++) {
    if (pause) await sleep(pause)
    const rt = new RichText({ text: `latency probe ${i} ${tag}` })
    rt.detectFacetsWithoutResolution()
    const sent = performance.now()
    const res = await agent.post({ text: rt.text, facets: rt.facets, createdAt: new Date().toISOString() })
    const start = performance.now()
    uris.push(res.uri)
    for (;;) {
      const page = await feedgen.app.bsky.feed.getFeedSkeleton({ feed, limit: 100 })
      const now = performance.now()
      if (page.data.feed.some((p) => p.post === res.uri)) {
        ms.push(Math.round(now - start))
        const frame = lastFrameAt > sent ? lastFrameAt : NaN
        frameMs.push(Math.round(frame - start))
        meadowMs.push(Math.round(now - frame))
        break
      }
      if (now - start > timeout) {
        console.error(`e2e-latency: ${res.uri} not listed after ${Math.round(now - start)} ms`)
        console.log(JSON.stringify({ ms, frameMs, meadowMs, uris }))
        ws.close()
        return 1
      }
      await sleep(poll)
    }
  }
  ws.close()
  console.log(JSON.stringify({ ms, frameMs, meadowMs, uris }))
  return 0
}
main()
  .then((rc) => process.exit(rc))
  .catch((err) => {
    console.error('e2e-latency: ' + (err && err.message ? err.message : err))
    process.exit(1)
  })
