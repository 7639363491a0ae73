// Writes or deletes a post through the official client (@atproto/api), as a
// person using a Bluesky app would: RichText detects #hashtags into facets.
//
//   node e2e-post.mjs PDS_URL HANDLE PASSWORD post "text"   -> {"uri","cid"}
//   node e2e-post.mjs PDS_URL HANDLE PASSWORD delete AT_URI
import { AtpAgent, RichText } from '@atproto/api'

const [service, identifier, password, op, arg] = process.argv.slice(2)
const main = async () => {
  const agent = new AtpAgent({ service })
  await agent.login({ identifier, password })
  if (op === 'post') {
    const rt = new RichText({ text: arg })
    rt.detectFacetsWithoutResolution()
    const res = await agent.post({ text: rt.text, facets: rt.facets, createdAt: new Date().toISOString() })
    console.log(JSON.stringify({ uri: res.uri, cid: res.cid }))
  } else if (op === 'delete') {
    await agent.deletePost(arg)
    console.log(JSON.stringify({ deleted: arg }))
  } else {
    throw new Error('op must be post or delete')
  }
}
main().catch((err) => {
  console.error('e2e-post: ' + (err && err.message ? err.message : err))
  process.exit(1)
})
