// Mints an access JWT the way @atproto/pds does (HS256 over PDS_JWT_SECRET,
// header typ at+jwt, claims scope/aud/sub/iat/exp), but already expired, so a
// test can prove the client refreshes its session when the PDS answers
// 400 ExpiredToken. Access tokens live 120 minutes: waiting is not an option.
//
//   PDS_JWT_SECRET=... node pds-mint-jwt.mjs DID [AUD] [SCOPE] [EXP_OFFSET_S]
// prints the token. AUD defaults to did:web:localhost, SCOPE to
// com.atproto.appPass (an app-password session), EXP_OFFSET_S to -60.
import crypto from 'node:crypto'

const [did, aud = 'did:web:localhost', scope = 'com.atproto.appPass', off = '-60'] =
  process.argv.slice(2)
const secret = process.env.PDS_JWT_SECRET
if (!did || !secret) {
  console.error('usage: PDS_JWT_SECRET=... node pds-mint-jwt.mjs DID [AUD] [SCOPE] [EXP_OFFSET_S]')
  process.exit(2)
}
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
const now = Math.floor(Date.now() / 1000)
const exp = now + Number(off)
const head = b64({ typ: 'at+jwt', alg: 'HS256' })
const body = b64({ scope, aud, sub: did, iat: exp - 7200, exp })
const sig = crypto.createHmac('sha256', Buffer.from(secret)).update(`${head}.${body}`).digest('base64url')
console.log(`${head}.${body}.${sig}`)
