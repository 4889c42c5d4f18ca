// token_server.js — a minimal token service for the distribution registry's
// bearer-token auth (the flow Docker Hub, GHCR and Harbor use), for
// tests/oci/run_tests.sh. GET /token?service=S&scope=repository:NAME:ACTIONS
// with basic auth USER:PASSWORD answers {"token": JWT}; the JWT is signed
// RS256 by KEY, carries CERT in its x5c header (the registry trusts it
// through its rootcertbundle) and grants the scopes asked for. Without
// credentials it grants nothing; wrong credentials get 401.
//
// usage: node token_server.js PORT KEY.pem CERT.pem USER PASSWORD
'use strict';
const http = require('http');
const fs = require('fs');
const crypto = require('crypto');

const [port, keyFile, certFile, user, password] = process.argv.slice(2);
const key = fs.readFileSync(keyFile);
const certDer = fs.readFileSync(certFile, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');

const b64url = (b) => Buffer.from(b).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

function sign(claims) {
    const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer] }));
    const body = b64url(JSON.stringify(claims));
    const sig = crypto.createSign('RSA-SHA256').update(`${head}.${body}`).sign(key);
    return `${head}.${body}.${b64url(sig)}`;
}

http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname !== '/token') {
        res.writeHead(404).end();
        return;
    }
    let who = '';
    const h = req.headers.authorization || '';
    if (h.startsWith('Basic ')) {
        const [u, p] = Buffer.from(h.slice(6), 'base64').toString().split(/:(.*)/s);
        if (u !== user || p !== password) {
            res.writeHead(401, { 'Content-Type': 'application/json' });
            res.end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
            return;
        }
        who = u;
    }
    const access = [];
    if (who) {
        for (const s of url.searchParams.getAll('scope')) {
            const m = /^([^:]+):(.+):([^:]+)$/.exec(s);
            if (m) access.push({ type: m[1], name: m[2], actions: m[3].split(',') });
        }
    }
    const now = Math.floor(Date.now() / 1000);
    const token = sign({
        iss: 'wasmfn-test-issuer', sub: who, aud: url.searchParams.get('service') || '',
        exp: now + 300, nbf: now - 10, iat: now, jti: crypto.randomBytes(8).toString('hex'), access,
    });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300 }));
}).listen(Number(port), '127.0.0.1');
