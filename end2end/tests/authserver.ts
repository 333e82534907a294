import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

/** The test authorization server (end2end/authserver), on a free loopback port. */
export interface AuthServer {
  issuer: string;
  admin: string;
  stop(): Promise<void>;
  /** POST to its admin API. */
  post(p: string, body: unknown): Promise<unknown>;
  /** PUT to its admin API. */
  put(p: string, body: unknown): Promise<unknown>;
}

/**
 * Starts a node server of end2end/ that prints `<prefix> {json}` as its first
 * line once it listens, and stops when its standard input closes.
 */
export async function spawnReady(
  script: string,
  args: string[],
  prefix: string,
): Promise<{ info: Record<string, string>; stop(): Promise<void> }> {
  const child: ChildProcess = spawn('node', [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 20 s`)), 20_000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)));
  });
  if (!ready.startsWith(`${prefix} `)) throw new Error(`unexpected first line: ${ready}`);
  return {
    info: JSON.parse(ready.slice(prefix.length + 1)),
    async stop() {
      child.stdin?.end();
      await new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(null);
        child.once('exit', resolve);
        setTimeout(() => child.kill('SIGKILL'), 3000);
      });
    },
  };
}

/** Starts it with Quiver's callback as the interactive clients' redirect URI. */
export async function startAuthServer(baseURL: string, extra: string[] = []): Promise<AuthServer> {
  const script = path.resolve(__dirname, '../authserver/server.js');
  const { info, stop } = await spawnReady(
    script,
    ['--port', '0', '--redirect-uri', `${baseURL}/oauth/callback`, '--max-lifetime-seconds', '900', ...extra],
    'AUTHSERVER_READY',
  );
  const send = async (method: string, p: string, body: unknown) => {
    const r = await fetch(`${info.admin}${p}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`admin ${method} ${p}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  return {
    issuer: info.issuer,
    admin: info.admin,
    async post(p: string, body: unknown) {
      return send('POST', p, body);
    },
    async put(p: string, body: unknown) {
      return send('PUT', p, body);
    },
    stop,
  };
}

/** The quirks server (end2end/quirks): token endpoints in the shapes of the catalogue's providers. */
export interface QuirksServer {
  url: string;
  stop(): Promise<void>;
  /** Registers how the shape `name` answers. */
  shape(name: string, shape: unknown): Promise<void>;
  /** Every request it received for `name`'s `action`. */
  requests(name: string, action: string): Promise<{ query: Record<string, string>; form: Record<string, string>; authorization: string | null }[]>;
}

export async function startQuirksServer(): Promise<QuirksServer> {
  const { info, stop } = await spawnReady(path.resolve(__dirname, '../quirks/server.mjs'), ['--port', '0'], 'QUIRKS_READY');
  const url = info.url;
  return {
    url,
    stop,
    async shape(name: string, shape: unknown) {
      const r = await fetch(`${url}/__shape/${name}`, { method: 'POST', body: JSON.stringify(shape) });
      if (!r.ok) throw new Error(`shape ${name}: ${r.status}`);
    },
    async requests(name: string, action: string) {
      const all = await (await fetch(`${url}/__requests`)).json();
      return all.filter((r: { shape: string; action: string }) => r.shape === name && r.action === action);
    },
  };
}
