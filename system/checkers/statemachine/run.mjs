// Executes the real state machine on this machine with aws-local-stepfunctions, as the
// stack deploys it: the definition comes from SAM's translator with the stack's
// DefinitionSubstitutions applied (system/checkers/cloud/stack.py writes it to the stack file),
// every Task state's Lambda ARN is invoked on the stack's Lambda service (a function
// error is 200 with X-Amz-Function-Error, thrown with its errorType as its name, so Retry
// and Catch match it as on AWS), and the SNS and EventBridge tasks append to files after
// checking that the topic and the bus are the stack's own (else they fail, as IAM and a
// missing resource would).
//
//   node system/checkers/statemachine/run.mjs <stack file> <input JSON> <notifications file> <events file>
//
// An input of the form {"$rule": "<event name>", "$event": {...}} is what that
// EventBridge rule of the stack would start it with: the rule must match the event (its
// pattern, on its bus), and its InputTransformer makes the input, as EventBridge does.
//
// Prints one JSON line: {"status", "output" | "error", "states": [entered, …], "input"}.
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

const [stackFile, inputJson, notifications, events] = process.argv.slice(2);
const stack = JSON.parse(readFileSync(stackFile, 'utf8'));
const definition = stack.definition;

function failure(name, message) {
  const err = new Error(message);
  err.name = name;
  return err;
}

function invoke(arn) {
  return async (input) => {
    const r = await fetch(`${stack.invoke}/2015-03-31/functions/${encodeURIComponent(arn)}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(input),
    });
    const body = await r.text();
    if (r.status === 404) throw failure('Lambda.ResourceNotFoundException', body);
    if (!r.ok) throw failure('Lambda.ServiceException', body);
    const parsed = JSON.parse(body);
    if (r.headers.get('x-amz-function-error')) throw failure(parsed.errorType, parsed.errorMessage);
    return parsed;
  };
}

const topics = new Set(Object.values(stack.topics));
const publish = async (input) => {
  if (!topics.has(input.TopicArn)) throw failure('SNS.NotFoundException', `Topic does not exist: ${input.TopicArn}`);
  appendFileSync(notifications, JSON.stringify(input) + '\n');
  return { MessageId: 'local' };
};
const putEvents = async (input) => {
  for (const e of input.Entries) {
    if (!stack.bus.includes(e.EventBusName)) throw failure('EventBridge.ResourceNotFoundException', `Event bus ${e.EventBusName} does not exist`);
  }
  for (const e of input.Entries) appendFileSync(events, JSON.stringify(e) + '\n');
  return { FailedEntryCount: 0, Entries: input.Entries.map(() => ({ EventId: 'local' })) };
};
const handlers = {};
const retried = {};
for (const [name, state] of Object.entries(definition.States)) {
  if (state.Type !== 'Task') continue;
  if (state.Resource.startsWith('arn:aws:lambda:')) handlers[name] = invoke(state.Resource);
  else if (state.Resource === 'arn:aws:states:::sns:publish') handlers[name] = publish;
  else if (state.Resource === 'arn:aws:states:::events:putEvents') handlers[name] = putEvents;
  else throw new Error(`state ${name}: no local handler for ${state.Resource}`);
  if (state.Retry) retried[name] = 0;
}

// EventBridge's matching for the pattern forms the template uses.
function matches(pattern, event) {
  if (pattern && typeof pattern === 'object' && !Array.isArray(pattern)) {
    return event && typeof event === 'object' && Object.entries(pattern).every(([k, v]) => k in event && matches(v, event[k]));
  }
  const values = Array.isArray(event) ? event : [event];
  return values.some((v) => pattern.some((p) => JSON.stringify(p) === JSON.stringify(v)));
}

// The rule named `name` (its event id in template.yaml) applied to an event on `bus`.
function ruleInput(name, event, bus) {
  const rule = stack.rules.find((r) => r.logical.endsWith(name));
  if (!rule) throw new Error(`the stack has no rule ${name}`);
  if (rule.bus !== bus || !matches(rule.pattern, event)) {
    throw new Error(`rule ${name} (bus ${rule.bus}) does not match this event on bus ${bus}: ${JSON.stringify(event)}`);
  }
  const { InputPathsMap, InputTemplate } = rule.input_transformer;
  let text = InputTemplate;
  for (const [v, path] of Object.entries(InputPathsMap)) {
    const value = path.replace(/^\$\./, '').split('.').reduce((x, k) => x?.[k], event);
    text = text.replaceAll(`<${v}>`, JSON.stringify(value));
  }
  return JSON.parse(text);
}

const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
let input = JSON.parse(inputJson);
if (input.$rule) input = ruleInput(input.$rule, input.$event, input.$bus ?? 'default');
// As Step Functions names every execution (a UUID unless the caller gives one): the
// context object's $$.Execution.Name and Id, which the Train state passes on.
const name = crypto.randomUUID();
const execution = machine.run(input, {
  context: {
    Execution: {
      Id: `${stack.stateMachineArn ?? 'arn:aws:states:eu-west-1:123456789012:stateMachine:local'}:${name}`.replace(':stateMachine:', ':execution:'),
      Name: name,
    },
  },
  overrides: {
    taskResourceLocalHandlers: handlers,
    retryIntervalOverrides: retried,
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
