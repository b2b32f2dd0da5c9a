// A node RFB client for tests/test_web_security_types.py: connects to 127.0.0.1:PORT
// over TCP, runs web/core/rfb.js until the first update is presented or the session
// fails, answering 'credentials-required' from the JSON options, and prints one JSON line.
// Run: node tests/js/security_client.mjs PORT '{"username": "...", "password": "...", "target": "..."}'
import net from 'node:net';

import { RFB } from '../../web/core/rfb.js';
import { Display } from '../../web/core/display.js';

const port = Number(process.argv[2]);
const creds = JSON.parse(process.argv[3] || '{}');
const display = new Display();
const asked = [];
const keys = [];
const sent = [];   // the first bytes we sent: 12 of ProtocolVersion, then the chosen security type
const socket = net.connect(port, '127.0.0.1');
let done = false;

function finish(result) {
    if (done) return;
    done = true;
    process.stdout.write(JSON.stringify({ ...result, asked, keys, chosen: sent[12] ?? null }) + '\n');
    socket.destroy();
}

const rfb = new RFB({
    display,
    send: (bytes) => {
        if (sent.length < 13) sent.push(...bytes.subarray(0, 13 - sent.length));
        socket.write(bytes);
    },
    options: { target: creds.target, password: creds.upfront ? creds.password : undefined, securityTypes: creds.securityTypes },
    onEvent: (e) => {
        if (e.type === 'credentials-required') {
            asked.push(e.types);
            rfb.sendPassword(creds.password, e.types.includes('username') ? creds.username : undefined);
        } else if (e.type === 'server-key') {
            keys.push(Buffer.from(e.fingerprint).toString('hex'));
        } else if (e.type === 'update-done') {
            finish({ state: rfb.state, pixel: display.getPixel(0, 0), size: [display.width, display.height] });
        } else if (e.type === 'state' && (e.state === 'failed' || e.state === 'disconnected')) {
            finish({ state: e.state, detail: e.detail });
        }
    },
});
socket.on('data', (data) => rfb.receive(new Uint8Array(data)));
socket.on('close', () => { rfb.close('socket closed'); finish({ state: rfb.state }); });
socket.on('error', (err) => finish({ state: 'socket-error', detail: String(err) }));
setTimeout(() => finish({ state: 'timeout' }), 20000).unref();
