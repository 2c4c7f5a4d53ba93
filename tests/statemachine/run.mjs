// Executes the real state machine (infra/statemachine/pipeline.asl.json) on this machine
// with aws-local-stepfunctions: every Task state invokes its stage function under the
// Lambda emulator (`cargo lambda watch`), the SNS task appends its message to a file.
//
//   node tests/statemachine/run.mjs <emulator URL> <input JSON> <notifications file>
//
// Prints one JSON line: {"status", "output" | "error", "states": [entered, …]}.
import { readFileSync, appendFileSync } from 'node:fs';

// aws-local-stepfunctions uses Promise.withResolvers, which Node 20 lacks.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}
const { StateMachine } = await import('aws-local-stepfunctions');

const [emulator, inputJson, notifications] = process.argv.slice(2);
const root = new URL('../../', import.meta.url);
let text = readFileSync(new URL('infra/statemachine/pipeline.asl.json', root), 'utf8');

// The Task states and the functions they invoke: DefinitionSubstitutions, as SAM does.
const functions = {
  Ingest: 'rps-ingest',
  Validate: 'rps-validate',
  Transform: 'rps-transform',
  Train: 'rps-train',
  Evaluate: 'rps-evaluate',
  Promote: 'rps-promote',
};
for (const [state, fn] of Object.entries(functions)) {
  text = text.replaceAll('${' + state + 'FunctionArn}', `arn:aws:lambda:us-east-1:123456789012:function:${fn}`);
}
text = text.replaceAll('${FailureTopicArn}', 'arn:aws:sns:us-east-1:123456789012:rps-failures');
const definition = JSON.parse(text);

// A function error comes back from the emulator as HTTP 500 with {errorType,
// errorMessage}: rethrown with that name, so Retry and Catch match it as on AWS.
function invoke(fn) {
  return async (input) => {
    const r = await fetch(`${emulator}/2015-03-31/functions/${fn}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(input),
    });
    const body = await r.text();
    let parsed;
    try { parsed = JSON.parse(body); } catch { parsed = undefined; }
    if (!r.ok || (parsed && parsed.errorType && parsed.errorMessage !== undefined && !('snapshot' in parsed))) {
      const err = new Error(parsed?.errorMessage ?? body);
      err.name = parsed?.errorType ?? 'Lambda.ServiceException';
      throw err;
    }
    return parsed;
  };
}
const handlers = Object.fromEntries(Object.entries(functions).map(([s, fn]) => [s, invoke(fn)]));
handlers.NotifyFailure = async (input) => {
  appendFileSync(notifications, JSON.stringify(input) + '\n');
  return { MessageId: 'local' };
};

const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
const execution = machine.run(JSON.parse(inputJson), {
  overrides: {
    taskResourceLocalHandlers: handlers,
    retryIntervalOverrides: Object.fromEntries(Object.keys(functions).map((s) => [s, 0])),
  },
});
const states = [];
const logs = (async () => {
  for await (const event of execution.eventLogs) {
    if (event.type === 'StateEntered') states.push(event.state.name);
  }
})();
let report;
try {
  const output = await execution.result;
  report = { status: 'SUCCEEDED', output };
} catch (e) {
  // An ExecutionError wraps what failed the execution (a Fail state's Error and Cause).
  const failed = e.cause ?? e;
  report = { status: 'FAILED', error: failed.name, cause: String(failed.message ?? failed) };
}
await logs.catch(() => {});
console.log(JSON.stringify({ ...report, states }));
