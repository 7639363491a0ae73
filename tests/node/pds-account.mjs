// Creates a test account <name>.test on a running PDS through its public XRPC
// API (com.atproto.server.createAccount, then createAppPassword), the way a
// person signs up and then makes an app password for a tool like meadow.
//
// As a module: createAccount(pdsUrl, name) -> {handle, did, password, appPassword}.
// As a script: node pds-account.mjs PDS_URL NAME  prints that object as JSON.
import crypto from 'node:crypto'

const xrpc = async (pdsUrl, nsid, body, token) => {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(`${pdsUrl}/xrpc/${nsid}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  })
  const json = await res.json().catch(() => ({}))
  if (!res.ok) {
    throw new Error(`${nsid}: HTTP ${res.status} ${json.error || ''} ${json.message || ''}`)
  }
  return json
}

export const createAccount = async (pdsUrl, name) => {
  const handle = `${name}.test`
  const password = crypto.randomBytes(12).toString('hex')
  const acct = await xrpc(pdsUrl, 'com.atproto.server.createAccount', {
    handle,
    email: `${name}@example.test`,
    password,
  })
  const app = await xrpc(
    pdsUrl,
    'com.atproto.server.createAppPassword',
    { name: 'meadow' },
    acct.accessJwt,
  )
  return { handle, did: acct.did, password, appPassword: app.password }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [pdsUrl, name] = process.argv.slice(2)
  createAccount(pdsUrl, name)
    .then((a) => console.log(JSON.stringify(a)))
    .catch((err) => {
      console.error('pds-account: ' + err.message)
      process.exit(1)
    })
}
