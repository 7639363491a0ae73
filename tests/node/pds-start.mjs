// Starts a REAL @atproto/pds with @did-plc/server's in-memory PLC directory,
// both listening on 127.0.0.1 only, for Meadow's end-to-end tests.
//
// Environment (set by tests/e2e/pds.sh): PDS_PORT, PDS_DATA_DIRECTORY,
// PDS_BLOBSTORE_DISK_LOCATION, PDS_JWT_SECRET, PDS_ADMIN_PASSWORD,
// PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX and the fixed dev settings
// (PDS_HOSTNAME=localhost, PDS_INVITE_REQUIRED=false, PDS_DEV_MODE=true,
// PDS_SERVICE_HANDLE_DOMAINS=.test, PDS_CRAWLERS empty). The PLC listens on
// a free port chosen here, and PDS_DID_PLC_URL is pointed at it.
//
// Arguments: --state FILE (where the readiness JSON is written, besides
// stdout) and --accounts name,name,... (handles <name>.test created at start,
// each with an app password). Prints one line `READY {json}` when both servers
// listen and the accounts exist; exits on SIGTERM/SIGINT after closing both.
import fs from 'node:fs'
import { PDS, envToCfg, envToSecrets, readEnv } from '@atproto/pds'
import plc from '@did-plc/server'
import { createAccount } from './pds-account.mjs'

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt
}
const stateFile = opt('--state', '')
const accountNames = opt('--accounts', '')
  .split(',')
  .filter((s) => s.length > 0)

// Express's app.listen(port) binds every interface; the tests must only ever
// listen on loopback, so pin the host before the servers call it.
const bindLoopback = (app) => {
  const listen = app.listen.bind(app)
  app.listen = (port, ...rest) => listen(port, '127.0.0.1', ...rest)
}

const main = async () => {
  const plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: 0 })
  bindLoopback(plcServer.app)
  const plcHttp = await plcServer.start()
  const plcUrl = `http://127.0.0.1:${plcHttp.address().port}`
  process.env.PDS_DID_PLC_URL = plcUrl

  const env = readEnv()
  const pds = await PDS.create(envToCfg(env), envToSecrets(env))
  bindLoopback(pds.app)
  const pdsHttp = await pds.start()
  const port = pdsHttp.address().port
  const pdsUrl = `http://127.0.0.1:${port}`

  const accounts = {}
  for (const name of accountNames) {
    accounts[name] = await createAccount(pdsUrl, name)
  }
  const state = {
    pid: process.pid,
    pds: pdsUrl,
    publicUrl: `http://localhost:${port}`,
    plc: plcUrl,
    serviceDid: pds.ctx.cfg.service.did,
    accounts,
  }
  if (stateFile) {
    // The file holds test passwords: owner-only, written whole then renamed.
    fs.writeFileSync(stateFile + '.tmp', JSON.stringify(state, null, 2), { mode: 0o600 })
    fs.renameSync(stateFile + '.tmp', stateFile)
  }
  console.log('READY ' + JSON.stringify({ pds: pdsUrl, plc: plcUrl, pid: process.pid }))

  let closing = false
  const shutdown = async () => {
    if (closing) return
    closing = true
    try {
      await pds.destroy()
      await plcServer.destroy()
    } finally {
      process.exit(0)
    }
  }
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
}

main().catch((err) => {
  console.error('pds-start: ' + (err && err.stack ? err.stack : err))
  process.exit(1)
})
