// Mints service-auth tokens with the reference library (@atproto/crypto
// keypairs, @atproto/xrpc-server createServiceJwt), for Meadow's auth tests,
// fuzz seeds and benchmark.
//   node auth-mint.mjs keygen ES256K|ES256 [privhex]
//     -> {"priv": hex, "multibase": "z...", "didKey": "did:key:z..."}
//   node auth-mint.mjs mint ES256K|ES256 <privhex> <iss> <aud> <lxm> <exp unix s>
//     -> the token on stdout
import { P256Keypair, Secp256k1Keypair } from '@atproto/crypto'
import { createServiceJwt } from '@atproto/xrpc-server'

const [cmd, alg, priv, ...rest] = process.argv.slice(2)
const Kp = alg === 'ES256' ? P256Keypair : Secp256k1Keypair
const kp = priv ? await Kp.import(priv, { exportable: true }) : await Kp.create({ exportable: true })
if (cmd === 'keygen') {
  const didKey = kp.did()
  console.log(JSON.stringify({
    priv: Buffer.from(await kp.export()).toString('hex'),
    multibase: didKey.slice('did:key:'.length),
    didKey,
  }))
} else if (cmd === 'mint') {
  const [iss, aud, lxm, exp] = rest
  console.log(await createServiceJwt({ iss, aud, lxm, exp: Number(exp), keypair: kp }))
} else {
  console.error('usage: auth-mint.mjs keygen|mint ...')
  process.exit(2)
}
