// Captures a PDS's com.atproto.sync.subscribeRepos frames from a cursor, in
// the corpus' format ([u32 little-endian length][frame bytes] per frame), so
// tests (and `meadow relay decode`) can work on frames a real PDS produced
// for real net.atrarium records.
//
//   node e2e-firehose.mjs WS_BASE CURSOR OUT_FILE [IDLE_MS]
// WS_BASE e.g. ws://127.0.0.1:2583. Stops after IDLE_MS (default 1000) with
// no new frame; prints the frame count.
import fs from 'node:fs'

const [base, cursor = '0', out, idle = '1000'] = process.argv.slice(2)
const ws = new WebSocket(`${base}/xrpc/com.atproto.sync.subscribeRepos?cursor=${cursor}`)
ws.binaryType = 'arraybuffer'
const frames = []
let timer
const finish = () => {
  const parts = []
  for (const f of frames) {
    const len = Buffer.alloc(4)
    len.writeUInt32LE(f.length)
    parts.push(len, f)
  }
  fs.writeFileSync(out, Buffer.concat(parts))
  console.log(frames.length)
  ws.close()
  process.exit(0)
}
const arm = () => {
  clearTimeout(timer)
  timer = setTimeout(finish, Number(idle))
}
ws.onopen = arm
ws.onmessage = (m) => {
  frames.push(Buffer.from(m.data))
  arm()
}
ws.onerror = (e) => {
  console.error('e2e-firehose: ' + (e.message || 'websocket error'))
  process.exit(1)
}
setTimeout(() => {
  console.error('e2e-firehose: no end within 60 s')
  process.exit(1)
}, 60000)
