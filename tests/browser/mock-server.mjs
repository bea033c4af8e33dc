// A stand-in for the talos-dr console's API, for developing and testing the web UI without a
// cluster: serves the built UI from dist/ and the three health routes, with health taken from
// fixtures (produced by the shared crate's own verdict logic) that a test can switch at will.
//
//   node tests/browser/mock-server.mjs [port]   # then open http://127.0.0.1:PORT
//   curl -X POST http://127.0.0.1:PORT/__mock/health/one_etcd_down   # switch scenario
//   curl -X POST http://127.0.0.1:PORT/__mock/drop-streams           # cut live connections

import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
export const DEFAULT_DIST = resolve(here, "../../dist");
export const FIXTURES = JSON.parse(await readFile(join(here, "fixtures/health.json"), "utf8"));

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".ico": "image/x-icon",
};

function sendJson(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function errorBody(code, message) {
  return { error: { code, message } };
}

/**
 * Starts the mock on 127.0.0.1 (port 0 = any free port, so tests can run in parallel).
 * `polled: false` starts it like a console whose first poll has not finished; the first
 * `setScenario` then publishes. `signedIn: false` starts it signed out: the UI must sign in as
 * MOCK_USER / MOCK_PASSWORD; `signOut()` ends the session as an expiry would.
 * @returns {Promise<{url: string, setScenario: (name: string) => void, dropStreams: () => void, signOut: () => void,
 *   refuseStreams: (on: boolean) => void, openStreams: () => number, close: () => Promise<void>}>}
 */
export const MOCK_USER = "mock-sre";
export const MOCK_PASSWORD = "mock password";
const MOCK_CSRF = "mock-csrf-token";

function readBody(req) {
  return new Promise((resolve, reject) => {
    let text = "";
    req.on("data", (chunk) => { text += chunk; });
    req.on("end", () => resolve(text));
    req.on("error", reject);
  });
}

export async function startMockServer({ distDir = DEFAULT_DIST, port = 0, cluster = "emulated", scenario = "healthy", polled = true, signedIn = true } = {}) {
  await stat(join(distDir, "index.html")).catch(() => {
    throw new Error(`${join(distDir, "index.html")} is missing: build the UI first (trunk build --release)`);
  });
  let current = scenario;
  let refusing = false;
  // Like the console before its first poll: no health yet, streams open but silent.
  let pending = !polled;
  // Like the console's session: `signedIn: false` starts signed out, `signOut()` ends it.
  let session = signedIn;
  const streams = new Set();
  const sessionBody = () => ({
    session: { username: MOCK_USER, roles: ["viewer", "operator"], csrf_token: MOCK_CSRF, expires_at_ms: Date.now() + 3_600_000 },
  });

  const health = () => {
    const h = structuredClone(FIXTURES[current]);
    if (!h) throw new Error(`unknown scenario ${current}; have ${Object.keys(FIXTURES).join(", ")}`);
    h.cluster = cluster;
    h.observed_at_ms = Date.now();
    return h;
  };
  const push = (res) => res.write(`event: health\ndata: ${JSON.stringify(health())}\n\n`);

  const setScenario = (name) => {
    if (!FIXTURES[name]) throw new Error(`unknown scenario ${name}`);
    current = name;
    pending = false;
    for (const res of streams) push(res);
  };
  const signOut = () => {
    session = false;
  };
  const dropStreams = () => {
    for (const res of streams) res.destroy();
    streams.clear();
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://mock");
    const path = url.pathname;
    try {
      if (req.method === "POST" && path.startsWith("/__mock/")) {
        const [, , action, arg] = path.split("/");
        if (action === "health") setScenario(decodeURIComponent(arg));
        else if (action === "drop-streams") dropStreams();
        else if (action === "refuse-streams") refusing = arg !== "off";
        else return sendJson(res, 404, errorBody("not_found", `no mock action ${action}`));
        return sendJson(res, 200, { scenario: current, refusing, streams: streams.size });
      }
      if (path === "/api/session" && req.method === "POST") {
        const body = JSON.parse((await readBody(req)) || "{}");
        if (body.username !== MOCK_USER || body.password !== MOCK_PASSWORD) {
          return sendJson(res, 401, errorBody("bad_credentials", "wrong username or password"));
        }
        session = true;
        return sendJson(res, 200, sessionBody());
      }
      // Public on the real console: the sign-in page asks before anyone is signed in.
      if (path === "/api/auth/providers") return sendJson(res, 200, { oidc: null, local: "everyone" });
      if (path.startsWith("/api/") && !session) {
        return sendJson(res, 401, errorBody("unauthenticated", "not signed in, or the session has expired: sign in again"));
      }
      if (path === "/api/session" && req.method === "DELETE") {
        if (req.headers["x-csrf-token"] !== MOCK_CSRF) return sendJson(res, 403, errorBody("csrf_token", "missing or wrong X-CSRF-Token header"));
        session = false;
        res.writeHead(204);
        return res.end();
      }
      if (path === "/api/session") return sendJson(res, 200, sessionBody());
      if (path === "/api/clusters") {
        const nodes = FIXTURES[current].nodes.map((n) => n.node);
        return sendJson(res, 200, { clusters: [{ name: cluster, control_plane_nodes: nodes }] });
      }
      const m = path.match(/^\/api\/clusters\/([^/]+)\/health(\/stream)?$/);
      if (m) {
        if (decodeURIComponent(m[1]) !== cluster) {
          return sendJson(res, 404, errorBody("cluster_not_found", `no cluster named ${decodeURIComponent(m[1])}`));
        }
        if (!m[2]) {
          if (pending) return sendJson(res, 503, errorBody("health_not_ready", `no health for ${cluster} yet: the first poll has not finished`));
          return sendJson(res, 200, { health: health() });
        }
        if (refusing) return sendJson(res, 503, errorBody("unavailable", "the console is shutting down"));
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
        // A short retry keeps reconnect tests quick; the browser default is about 3 s.
        res.write("retry: 500\n\n");
        streams.add(res);
        req.on("close", () => streams.delete(res));
        if (!pending) push(res);
        return;
      }
      if (path.startsWith("/api/")) return sendJson(res, 404, errorBody("not_found", `no API route ${path}`));
      return serveStatic(distDir, path, res);
    } catch (e) {
      sendJson(res, 500, errorBody("mock_failed", String(e)));
    }
  });
  await new Promise((ok) => server.listen(port, "127.0.0.1", ok));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    setScenario,
    dropStreams,
    signOut,
    refuseStreams: (on) => { refusing = on; },
    openStreams: () => streams.size,
    close: () => {
      dropStreams();
      server.closeAllConnections();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
}

async function serveStatic(distDir, path, res) {
  const root = resolve(distDir);
  let file = normalize(join(root, decodeURIComponent(path)));
  if (!file.startsWith(root + sep) || path === "/" || !extname(file)) {
    // The app's own routes (/clusters/x) all load index.html, like the real console does.
    file = join(root, "index.html");
  }
  try {
    const body = await readFile(file);
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    sendJson(res, 404, errorBody("not_found", `no file ${path}`));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 8481);
  const mock = await startMockServer({ port });
  console.log(`mock console on ${mock.url} (scenarios: ${Object.keys(FIXTURES).join(", ")})`);
  const stop = async () => { await mock.close(); process.exit(0); };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
