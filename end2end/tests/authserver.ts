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

/** Starts it with Quiver's callback as the interactive clients' redirect URI. */
export async function startAuthServer(baseURL: string, extra: string[] = []): Promise<AuthServer> {
  const script = path.resolve(__dirname, '../authserver/server.js');
  const child: ChildProcess = spawn(
    'node',
    [script, '--port', '0', '--redirect-uri', `${baseURL}/oauth/callback`, '--max-lifetime-seconds', '900', ...extra],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = readline.createInterface({ input: child.stdout! });
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the authorization server did not start in 20 s')), 20_000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`the authorization server exited (${code})`)));
  });
  if (!ready.startsWith('AUTHSERVER_READY ')) throw new Error(`unexpected first line: ${ready}`);
  const info = JSON.parse(ready.slice('AUTHSERVER_READY '.length));
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
