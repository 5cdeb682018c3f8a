// Benchmark of issue 13's peer, node-oidc-provider, measured the way
// crates/keyless/benches/http_exchange.rs measures Keyless: the server (server.mjs) is
// confined to core 0 (`taskset -a -c 0`), this load generator runs on core 1 in its own
// process; every request is a client_credentials grant carrying its own private_key_jwt
// assertion (RS256, unique jti, signed before the timed phases) and gets back a JWT
// access token signed ES256: one RS256 verify + one ES256 sign, as a Keyless exchange.
//
// Phases, each with its own assertions, over 16 keep-alive HTTPS/1.1 connections:
// 1. warm-up (connections, V8's JIT);
// 2. closed loop: maximum throughput and the server's CPU seconds per request, from
//    /proc/PID/stat (utime + stime: every thread of the process);
// 3. open loop at half of phase 2's throughput: latency from each request's scheduled
//    start (no coordinated omission), p50 and p99.
// Every response must be 200 with an access_token (the first one is also checked to be
// an ES256 JWT whose signature verifies with the provider's key).
//
// Prints Markdown rows `| figure | value unit | | | |` (scripts/bench.sh gathers them)
// and an HTML comment line with the versions used. Run through ./run.sh.
import { execFileSync, spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const WARM = 500;
const CLOSED_LOOP = 5000;
const OPEN_LOOP = 3000;
const CONNECTIONS = 16;
const CLIENT_ID = 'bench';
const RESOURCE = 'https://api.bench.example/';
const NAME = 'peer: node oidc-provider';

const fail = (msg) => {
  throw new Error(msg);
};

/** A self-signed P-256 certificate for 127.0.0.1, made with openssl, into `dir`. */
function makeCert(dir) {
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', path.join(dir, 'tls.key'), '-out', path.join(dir, 'tls.crt'),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  return fs.readFileSync(path.join(dir, 'tls.crt'));
}

/** Starts server.mjs on core 0; resolves to { child, issuer } once it listens. */
function startServer(dir) {
  const child = spawn('taskset', ['-a', '-c', '0', process.execPath, path.join(here, 'server.mjs')], {
    env: { ...process.env, PEER_DIR: dir, PEER_RESOURCE: RESOURCE, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    let ready = false;
    lines.on('line', (line) => {
      const at = line.indexOf('ready at ');
      if (!ready && at >= 0) {
        ready = true;
        resolve({ child, issuer: line.slice(at + 'ready at '.length).trim() });
      }
      // Later lines are drained so the server never blocks on a full pipe.
    });
    child.on('exit', (code) => {
      if (!ready) reject(new Error(`server exited before ready (code ${code})`));
    });
    child.on('error', reject);
  });
}

/** User + system CPU seconds of process `pid` so far (all its threads). */
function cpuSeconds(pid, ticks) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * `n` client assertions, each with its own jti, signed RS256 with the client's key.
 * Claims shaped like a projected service-account token (what Keyless verifies), so
 * both servers parse and verify tokens of about the same size.
 */
async function mintAssertions(n, key, kid, tokenUrl) {
  const sign = promisify(crypto.sign);
  const header = b64({ alg: 'RS256', kid, typ: 'JWT' });
  const now = Math.floor(Date.now() / 1000);
  const one = async () => {
    const payload = b64({
      aud: [tokenUrl],
      exp: now + 3600,
      iat: now,
      iss: CLIENT_ID,
      jti: crypto.randomUUID(),
      'kubernetes.io': {
        namespace: 'default',
        serviceaccount: { name: 'bench', uid: crypto.randomUUID() },
      },
      nbf: now,
      sub: CLIENT_ID,
    });
    const input = `${header}.${payload}`;
    // Async signing runs on libuv's thread pool: both cores, before the timed phases.
    const sig = await sign('sha256', Buffer.from(input), key);
    return `${input}.${sig.toString('base64url')}`;
  };
  const out = [];
  for (let i = 0; i < n; i += 64) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(64, n - i) }, one))));
  }
  return out;
}

/** One exchange; resolves to the access token, rejects unless 200 with one. */
function exchange(agent, tokenUrl, assertion) {
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: CLIENT_ID,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
    scope: 'api:read',
    resource: RESOURCE,
  }).toString();
  return new Promise((resolve, reject) => {
    const req = https.request(tokenUrl, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body),
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) {
          reject(new Error(`status ${res.statusCode}: ${text}`));
          return;
        }
        let token;
        try {
          token = JSON.parse(text).access_token;
        } catch {
          // Checked below.
        }
        if (typeof token !== 'string' || token.length === 0) {
          reject(new Error(`200 without an access_token: ${text}`));
          return;
        }
        resolve(token);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Deals `items` round-robin into `workers` piles. */
function deal(items, workers) {
  const piles = Array.from({ length: workers }, () => []);
  items.forEach((item, i) => piles[i % workers].push(item));
  return piles;
}

/** Closed loop: `workers` sequential senders; resolves to the wall time in seconds. */
async function closedLoop(items, workers, send) {
  const started = performance.now();
  await Promise.all(deal(items, workers).map(async (pile) => {
    for (const item of pile) {
      await send(item);
    }
  }));
  return (performance.now() - started) / 1000;
}

const sleepUntil = (t) => new Promise((r) => {
  const wait = t - performance.now();
  if (wait > 0) setTimeout(r, wait); else setImmediate(r);
});

/**
 * Open loop: arrivals at `rate`/s spread evenly over `workers` senders whatever the
 * server's pace; each latency (ms, sorted) is measured from the scheduled start.
 */
async function openLoop(items, workers, rate, send) {
  const interval = (workers / rate) * 1000;
  const t0 = performance.now() + 20;
  const all = await Promise.all(deal(items, workers).map(async (pile, w) => {
    const offset = (interval * w) / workers;
    const lat = [];
    for (let i = 0; i < pile.length; i += 1) {
      const due = t0 + offset + interval * i;
      await sleepUntil(due);
      await send(pile[i]);
      lat.push(performance.now() - due);
    }
    return lat;
  }));
  return all.flat().sort((a, b) => a - b);
}

/** The `q` quantile of sorted values (same rounding as the Rust benches). */
function percentile(sorted, q) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(Math.round((sorted.length - 1) * q), sorted.length - 1)];
}

/** Checks the token is an ES256 at+jwt whose signature verifies with `publicKey`. */
function checkAccessToken(token, publicKey) {
  const [h, p, s] = token.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  if (header.alg !== 'ES256') fail(`access token alg is ${header.alg}, not ES256`);
  const ok = crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url'));
  if (!ok) fail('access token signature does not verify with the provider key');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  if (claims.aud !== RESOURCE || claims.client_id !== CLIENT_ID) fail(`unexpected access token claims ${JSON.stringify(claims)}`);
}

/** Seconds per (RS256 verify of one of `assertions` + ES256 sign of a token-sized JWT). */
function cryptoCost(assertions, rsaPublic, ecPrivate) {
  const input = Buffer.from(`${b64({ alg: 'ES256', typ: 'at+jwt', kid: 'es256' })}.${b64({
    jti: crypto.randomUUID(), sub: CLIENT_ID, iat: 1, exp: 2, scope: 'api:read', client_id: CLIENT_ID, iss: 'https://127.0.0.1:1', aud: RESOURCE,
  })}`);
  const started = performance.now();
  for (const a of assertions) {
    const dot = a.lastIndexOf('.');
    const ok = crypto.verify('sha256', Buffer.from(a.slice(0, dot)), rsaPublic, Buffer.from(a.slice(dot + 1), 'base64url'));
    if (!ok) fail('an assertion does not verify');
    crypto.sign('sha256', input, { key: ecPrivate, dsaEncoding: 'ieee-p1363' });
  }
  return (performance.now() - started) / 1000 / assertions.length;
}

function versions() {
  const pkg = (name) => JSON.parse(fs.readFileSync(path.join(here, 'node_modules', name, 'package.json'))).version;
  return `node ${process.version} (OpenSSL ${process.versions.openssl}), oidc-provider ${pkg('oidc-provider')}, jose ${pkg('jose')}, koa ${pkg('koa')}`;
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-peer-'));
  let server;
  const cleanup = () => {
    server?.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  try {
    const ca = makeCert(dir);
    const signing = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const client = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(path.join(dir, 'signing.jwk.json'), JSON.stringify({
      ...signing.privateKey.export({ format: 'jwk' }), kid: 'es256', alg: 'ES256', use: 'sig',
    }));
    fs.writeFileSync(path.join(dir, 'client.jwk.json'), JSON.stringify({
      ...client.publicKey.export({ format: 'jwk' }), kid: 'rs256', alg: 'RS256', use: 'sig',
    }));

    const started = await startServer(dir);
    server = started.child;
    const { pid } = server; // taskset execs node: this is the server's own pid
    const tokenUrl = `${started.issuer}/token`;
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

    const t = performance.now();
    const assertions = await mintAssertions(WARM + CLOSED_LOOP + OPEN_LOOP, client.privateKey, 'rs256', tokenUrl);
    console.error(`minted ${assertions.length} assertions in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    // From here on this process (and its thread pool) stays off the server's core.
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });

    const agent = new https.Agent({ keepAlive: true, maxSockets: CONNECTIONS, ca });
    const send = (a) => exchange(agent, tokenUrl, a);
    checkAccessToken(await send(assertions.pop()), signing.publicKey);

    const warm = assertions.splice(0, WARM - 1);
    await closedLoop(warm, CONNECTIONS, send);

    const closed = assertions.splice(0, CLOSED_LOOP);
    const cpuBefore = cpuSeconds(pid, ticks);
    const selfBefore = process.cpuUsage();
    const wall = await closedLoop(closed, CONNECTIONS, send);
    const cpu = cpuSeconds(pid, ticks) - cpuBefore;
    const self = process.cpuUsage(selfBefore);
    const maxRate = CLOSED_LOOP / wall;
    // Below ~95% busy, the server's core was shared (other processes) or the load
    // generator could not keep up (its own CPU near 100%): the throughput is then low.
    console.error(`closed loop: server busy ${((100 * cpu) / wall).toFixed(0)}% of its core, load generator ${((100 * (self.user + self.system)) / 1e6 / wall).toFixed(0)}% of its core`);

    const lat = await openLoop(assertions, CONNECTIONS, maxRate / 2, send);
    agent.destroy();
    // For context only (stderr): what the two signatures cost node's own crypto, here
    // on the load generator's core, so the overhead around them can be judged.
    const perCrypto = cryptoCost(warm, client.publicKey, signing.privateKey);
    console.error(`node crypto, one RS256 verify + one ES256 sign: ${(perCrypto * 1e6).toFixed(1)} µs`);

    console.log(`<!-- ${NAME}: private_key_jwt (RS256) client_credentials -> ES256 JWT access token, unique assertions, ${CONNECTIONS} keep-alive connections, server on one core; ${versions()} -->`);
    const row = (figure, value, unit) => console.log(`| ${NAME} ${figure} | ${value.toFixed(1)} ${unit} | | | |`);
    row('CPU / exchange, HTTP/1.1', (cpu / CLOSED_LOOP) * 1e6, 'µs');
    row('throughput HTTP/1.1 (one core)', maxRate, '/s');
    row('p50 at half max throughput', percentile(lat, 0.5), 'ms');
    row('p99 at half max throughput', percentile(lat, 0.99), 'ms');
  } finally {
    cleanup();
  }
}

main().catch((err) => {
  console.error(`peer benchmark failed: ${err.stack ?? err}`);
  process.exitCode = 1;
});
