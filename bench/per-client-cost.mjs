// What one per-client session costs the gateway: starts `ingest` (mock, 2 mints, 100 trades/s) and
// `gateway --fanout per-client` on a fresh topic, opens N WebSocket clients subscribed to sub-1s,
// and reads the gateway's threads and resident memory from /proc before and after.
// Usage: node bench/per-client-cost.mjs [N] [gateway flags...] (ARENA=n sets MALLOC_ARENA_MAX)

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
const { default: WebSocket } = await import(new URL("../static/node_modules/ws/index.js", import.meta.url).href);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const N = Number(process.argv[2] ?? 200);
const extra = process.argv.slice(3);
const port = 44000 + Math.floor(Math.random() * 2000);
const topic = `cost-${process.pid}-${Date.now()}`;
const ing = spawn(new URL("../target/debug/klinecast", import.meta.url).pathname, ["ingest", "--topic", topic, "--mock-mints", "2", "--mock-rate", "100"], { stdio: "ignore" });
// Whatever happens, the processes started here stop with this script.
const children = [ing];
process.on("exit", () => children.forEach((c) => c.kill("SIGKILL")));
process.on("uncaughtException", (error) => {
  console.error(error.message);
  process.exit(1);
});
await sleep(3000);
const server = spawn(new URL("../target/debug/klinecast", import.meta.url).pathname, ["gateway", "--topic", topic, "--listen", `127.0.0.1:${port}`, "--fanout", "per-client", "--max-connections-per-ip", "100000", ...extra], { stdio: ["ignore", "ignore", "ignore"], env: { ...process.env, ...(process.env.ARENA ? { MALLOC_ARENA_MAX: process.env.ARENA } : {}) } });
children.push(server);
let healthy = false;
for (let i = 0; i < 100 && !healthy && server.exitCode === null; i++) {
  try { healthy = (await fetch(`http://127.0.0.1:${port}/healthz`)).ok; } catch {}
  if (!healthy) await sleep(100);
}
if (!healthy) throw new Error(`the gateway did not start (exit code ${server.exitCode}); flags: ${extra.join(" ")}`);
const stat = () => { const s = readFileSync(`/proc/${server.pid}/status`, "utf8"); return { threads: Number(/Threads:\s+(\d+)/.exec(s)[1]), rssKiB: Number(/VmRSS:\s+(\d+)/.exec(s)[1]) }; };
await sleep(1000);
const before = stat();
const clients = [];
let frames = 0;
for (let i = 0; i < N; i++) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  ws.on("message", (d, bin) => { if (bin) frames++; });
  await new Promise((r) => ws.on("open", r));
  ws.send("sub-1s");
  clients.push(ws);
}
await sleep(8000);
const after = stat();
console.log(JSON.stringify({ N, before, after, perClientKiB: (after.rssKiB - before.rssKiB) / N, threadsPerClient: (after.threads - before.threads) / N, frames }));
for (const c of clients) c.terminate();
server.kill("SIGTERM"); ing.kill("SIGTERM");
process.exit(0);
