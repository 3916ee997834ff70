// The JavaScript Durable Task SDK (@microsoft/durabletask-js, pinned in package-lock.json),
// unchanged, against a durable-azstorage sidecar: chain, fan-out/fan-in, external event, timer.
// Usage: node run_patterns.js HOST:PORT  -> prints one JSON line with the outcomes; exit 1 on error.
"use strict";
const { TaskHubGrpcClient, TaskHubGrpcWorker, NoOpLogger, whenAll, OrchestrationStatus } = require("@microsoft/durabletask-js");

const address = process.argv[2] || "localhost:4001";

const hello = async (_ctx, name) => `Hello ${name}!`;
const double = async (_ctx, value) => value * 2;

const chain = async function* (ctx) {
  const out = [];
  for (const city of ["Tokyo", "Seattle", "London"]) {
    out.push(yield ctx.callActivity(hello, city));
  }
  return out;
};

const fanOut = async function* (ctx, count) {
  const tasks = [];
  for (let i = 0; i < count; i++) tasks.push(ctx.callActivity(double, i));
  const values = yield whenAll(tasks);
  return values.reduce((a, b) => a + b, 0);
};

const approval = async function* (ctx) {
  const answer = yield ctx.waitForExternalEvent("approve");
  return { approved: answer };
};

const timer = async function* (ctx) {
  const start = ctx.currentUtcDateTime.getTime();
  yield ctx.createTimer(1);
  return ctx.currentUtcDateTime.getTime() - start;
};

async function main() {
  const logger = new NoOpLogger();
  const worker = new TaskHubGrpcWorker({ hostAddress: address, logger });
  worker.addOrchestrator(chain);
  worker.addOrchestrator(fanOut);
  worker.addOrchestrator(approval);
  worker.addOrchestrator(timer);
  worker.addActivity(hello);
  worker.addActivity(double);
  const client = new TaskHubGrpcClient({ hostAddress: address, logger });
  await worker.start();
  const outcome = {};
  try {
    const wait = async (id) => {
      const state = await client.waitForOrchestrationCompletion(id, true, 60);
      return { status: OrchestrationStatus[state.runtimeStatus], output: JSON.parse(state.serializedOutput) };
    };
    outcome.chain = await wait(await client.scheduleNewOrchestration(chain));
    outcome.fanOut = await wait(await client.scheduleNewOrchestration(fanOut, 10));
    const approvalId = await client.scheduleNewOrchestration(approval);
    await client.waitForOrchestrationStart(approvalId, false, 30);
    await client.raiseOrchestrationEvent(approvalId, "approve", { by: "js" });
    outcome.approval = await wait(approvalId);
    outcome.timer = await wait(await client.scheduleNewOrchestration(timer));
  } finally {
    await worker.stop();
    await client.stop();
  }
  process.stdout.write(JSON.stringify(outcome) + "\n");
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`error: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  },
);
