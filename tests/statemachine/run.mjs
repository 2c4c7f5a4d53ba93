// Executes the real state machine (infra/statemachine/pipeline.asl.json) on this machine
// with aws-local-stepfunctions: every Task state invokes its stage function under the
// Lambda emulator (`cargo lambda watch`), the SNS tasks append their message to a file,
// the EventBridge task appends its entries to another.
//
//   node tests/statemachine/run.mjs <emulator URL> <input JSON> <notifications file> <events file>
//
// An input of the form {"$rule": "<event name>", "$event": {...}} is what that
// EventBridgeRule of template.yaml's state machine would start it with: the rule's
// InputTransformer applied to the event, as EventBridge does.
//
// Prints one JSON line: {"status", "output" | "error", "states": [entered, …], "input"}.
import { readFileSync, appendFileSync } from 'node:fs';
import YAML from 'yaml';

// aws-local-stepfunctions uses Promise.withResolvers, which Node 20 lacks.
if (!Promise.withResolvers) {
  Promise.withResolvers = function () {
    let resolve, reject;
    const promise = new Promise((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}
const { StateMachine } = await import('aws-local-stepfunctions');

const [emulator, inputJson, notifications, events] = process.argv.slice(2);
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
  Verify: 'rps-verify',
};
for (const [state, fn] of Object.entries(functions)) {
  text = text.replaceAll('${' + state + 'FunctionArn}', `arn:aws:lambda:us-east-1:123456789012:function:${fn}`);
}
text = text.replaceAll('${FailureTopicArn}', 'arn:aws:sns:us-east-1:123456789012:rps-failures');
text = text.replaceAll('${AlertTopicArn}', 'arn:aws:sns:us-east-1:123456789012:rps-alerts');
text = text.replaceAll('${EventBusName}', 'default');
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
const notify = async (input) => {
  appendFileSync(notifications, JSON.stringify(input) + '\n');
  return { MessageId: 'local' };
};
handlers.NotifyFailure = notify;
handlers.NotifyRetrainRefused = notify;
handlers.RequestRetrain = async (input) => {
  for (const e of input.Entries) appendFileSync(events, JSON.stringify(e) + '\n');
  return { FailedEntryCount: 0, Entries: input.Entries.map(() => ({ EventId: 'local' })) };
};

// An EventBridge rule's InputTransformer, as template.yaml defines it, applied to an
// event: each <variable> replaced by the JSON of its path's value.
function ruleInput(ruleName, event) {
  // The CloudFormation tags (!Sub, !GetAtt, …) only matter to CloudFormation.
  const template = YAML.parse(readFileSync(new URL('template.yaml', root), 'utf8').replace(/!(Ref|Sub|GetAtt|If|Equals|Not)\b/g, ''));
  const rule = template.Resources.PipelineStateMachine.Properties.Events[ruleName];
  if (!rule) throw new Error(`template.yaml's state machine has no event ${ruleName}`);
  const { InputPathsMap, InputTemplate } = rule.Properties.InputTransformer;
  let text = InputTemplate;
  for (const [name, path] of Object.entries(InputPathsMap)) {
    const value = path.replace(/^\$\./, '').split('.').reduce((v, k) => v?.[k], event);
    text = text.replaceAll(`<${name}>`, JSON.stringify(value));
  }
  return JSON.parse(text);
}

const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
let input = JSON.parse(inputJson);
if (input.$rule) input = ruleInput(input.$rule, input.$event);
const execution = machine.run(input, {
  overrides: {
    taskResourceLocalHandlers: handlers,
    retryIntervalOverrides: Object.fromEntries(Object.keys(functions).concat(['RequestRetrain']).map((s) => [s, 0])),
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
console.log(JSON.stringify({ ...report, states, input }));
