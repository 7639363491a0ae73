// Asks a real PDS for service-auth tokens, as a Bluesky client (or the
// AppView path) does: com.atproto.server.createSession with an app password,
// then com.atproto.server.getServiceAuth?aud=&lxm=[&exp=] once per SPEC.
//   node auth-service-token.mjs PDS_URL IDENTIFIER PASSWORD SPEC...
//   SPEC = AUD|LXM[|EXP_UNIX_S]
// Prints one line per SPEC: the token, or "ERROR <XRPC error JSON>" when the
// PDS refuses that one. One login for all specs (createSession is slow and
// rate-limited).
const [pdsUrl, identifier, password, ...specs] = process.argv.slice(2)

const call = async (method, nsid, { body, query, token } = {}) => {
  const url = new URL(`/xrpc/${nsid}`, pdsUrl)
  for (const [k, v] of Object.entries(query ?? {})) if (v) url.searchParams.set(k, v)
  const headers = {}
  if (body) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined })
  const json = await res.json().catch(() => ({}))
  return res.ok ? { json } : { error: { status: res.status, ...json } }
}

const session = await call('POST', 'com.atproto.server.createSession', {
  body: { identifier, password },
})
if (session.error) {
  console.error('auth-service-token: createSession: ' + JSON.stringify(session.error))
  process.exit(1)
}
for (const spec of specs) {
  const [aud, lxm, exp] = spec.split('|')
  const r = await call('GET', 'com.atproto.server.getServiceAuth', {
    query: { aud, lxm, exp },
    token: session.json.accessJwt,
  })
  console.log(r.error ? 'ERROR ' + JSON.stringify(r.error) : r.json.token)
}
