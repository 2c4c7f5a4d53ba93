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
// The fan-out (a distributed Map whose ItemReader reads the locations file from S3, each
// item running this state machine again through states:startExecution.sync:2) is
// emulated: the ItemReader becomes a Task state "<Map>.ItemReader" before the Map,
// reading the object through moto with the state machine role's credentials (so IAM
// decides, as on AWS), and each item's StartExecution is checked against the role's
// policies and must name this state machine; it runs a child execution here and answers
// as the .sync:2 integration does ({Status, Output, …}; a failed child is
// States.TaskFailed). The Map's MaxConcurrencyPath applies; ToleratedFailure* is AWS's
// alone (the definition catches every location's failure itself).
//
// An input of the form {"$rule": "<event name>", "$event": {...}} is what that
// EventBridge rule of the stack would start it with: the rule must match the event (its
// pattern, on its bus), and its InputTransformer makes the input, as EventBridge does.
//
// Prints one JSON line: {"status", "output" | "error", "states": [entered, …], "input",
// "children": [{"input", "status", "states"}, …]} (the fan-out's child executions).
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
const definition = withItemReaders(stack.definition);

// Every Map with an ItemReader gets a Task "<Map>.ItemReader" before it that puts the
// items at $.__items (what the local engine iterates), and what led to the Map leads
// to that Task.
function withItemReaders(def) {
  const states = { ...def.States };
  for (const [name, state] of Object.entries(def.States)) {
    if (state.Type !== 'Map' || !state.ItemReader) continue;
    const reader = `${name}.ItemReader`;
    const retarget = (s) => {
      if (s.Next === name) s.Next = reader;
      if (s.Default === name) s.Default = reader;
      for (const c of s.Choices ?? []) if (c.Next === name) c.Next = reader;
      for (const c of s.Catch ?? []) if (c.Next === name) c.Next = reader;
    };
    for (const s of Object.values(states)) retarget(s);
    if (def.StartAt === name) def = { ...def, StartAt: reader };
    const { ItemReader, ...map } = state;
    states[reader] = { Type: 'Task', Resource: ItemReader.Resource, Parameters: { ...ItemReader.Parameters, ReaderConfig: ItemReader.ReaderConfig }, ResultPath: '$.__items', Next: name };
    states[name] = { ...map, ItemsPath: '$.__items' };
  }
  return { ...def, States: states };
}

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
// What the state machine's role may do (its policies, judged by the stack runner).
async function allowed(action, resource) {
  const q = new URLSearchParams({ as: 'state-machine', action, resource });
  const r = await fetch(`${stack.invoke}/harness/allows?${q}`);
  return (await r.json()).allowed === true;
}

// The ItemReader: the object through moto, as the state machine's role.
const readItems = async (input) => {
  if (input.Bucket !== stack.bucket && stack.bucket) throw failure('States.ItemReaderFailed', `not the stack's bucket: ${input.Bucket}`);
  const q = new URLSearchParams({ as: 'state-machine', key: input.Key });
  const r = await fetch(`${stack.invoke}/harness/read?${q}`);
  const body = await r.text();
  if (!r.ok) throw failure('States.ItemReaderFailed', `s3:GetObject s3://${input.Bucket}/${input.Key}: ${r.status} ${body}`);
  if (input.ReaderConfig?.InputType !== 'JSON') throw failure('States.ItemReaderFailed', `InputType ${input.ReaderConfig?.InputType} is not emulated`);
  const items = JSON.parse(body);
  if (!Array.isArray(items)) throw failure('States.ItemReaderFailed', 'the object is not a JSON array');
  return items;
};

// states:startExecution.sync:2 of this state machine: a child execution, to its end.
const children = [];
const startExecution = async (input) => {
  if (input.StateMachineArn !== stack.state_machine?.arn) {
    throw failure('StepFunctions.StateMachineDoesNotExistException', `not this stack's state machine: ${input.StateMachineArn}`);
  }
  if (!(await allowed('states:StartExecution', input.StateMachineArn))) {
    throw failure('States.TaskFailed', `AccessDenied: the state machine's role may not states:StartExecution on ${input.StateMachineArn}`);
  }
  const name = crypto.randomUUID();
  const arn = `${input.StateMachineArn}:${name}`.replace(':stateMachine:', ':execution:');
  const child = { input: input.Input, states: [] };
  children.push(child);
  const execution = machine.run(input.Input, runOptions(arn, name));
  const logs = (async () => {
    for await (const event of execution.eventLogs) if (event.type === 'StateEntered') child.states.push(event.state.name);
  })();
  try {
    const output = await execution.result;
    child.status = 'SUCCEEDED';
    await logs.catch(() => {});
    return { ExecutionArn: arn, Input: JSON.stringify(input.Input), Output: output, Status: 'SUCCEEDED', Name: name };
  } catch (e) {
    await logs.catch(() => {});
    const failed = e.cause ?? e;
    child.status = 'FAILED';
    child.error = failed.name;
    throw failure('States.TaskFailed', JSON.stringify({ ExecutionArn: arn, Status: 'FAILED', Error: failed.name, Cause: String(failed.message ?? failed) }));
  }
};

const handlers = {};
const retried = {};
function register(states) {
  for (const [name, state] of Object.entries(states)) {
    if (state.Type === 'Map') register((state.ItemProcessor ?? state.Iterator).States);
    if (state.Type !== 'Task') continue;
    if (handlers[name]) throw new Error(`state ${name}: two Task states of one name cannot both be emulated`);
    if (state.Resource.startsWith('arn:aws:lambda:')) handlers[name] = invoke(state.Resource);
    else if (state.Resource === 'arn:aws:states:::sns:publish') handlers[name] = publish;
    else if (state.Resource === 'arn:aws:states:::events:putEvents') handlers[name] = putEvents;
    else if (state.Resource === 'arn:aws:states:::s3:getObject') handlers[name] = readItems;
    else if (state.Resource === 'arn:aws:states:::states:startExecution.sync:2') handlers[name] = startExecution;
    else throw new Error(`state ${name}: no local handler for ${state.Resource}`);
    if (state.Retry) retried[name] = 0;
  }
}
register(definition.States);

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
    // A path the event lacks gives null (as EventBridge does), never undefined.
    text = text.replaceAll(`<${v}>`, JSON.stringify(value ?? null));
  }
  return JSON.parse(text);
}

const machine = new StateMachine(definition, { validationOptions: { checkArn: true, checkPaths: true } });
let input = JSON.parse(inputJson);
if (input.$rule) input = ruleInput(input.$rule, input.$event, input.$bus ?? 'default');

// As Step Functions names every execution (a UUID unless the caller gives one): the
// context object's $$.Execution.Name and Id, which the Train state passes on.
function runOptions(id, name) {
  return {
    context: { Execution: { Id: id, Name: name } },
    overrides: {
      taskResourceLocalHandlers: handlers,
      retryIntervalOverrides: retried,
    },
  };
}
const name = crypto.randomUUID();
const smArn = stack.state_machine?.arn ?? 'arn:aws:states:eu-west-1:123456789012:stateMachine:local';
const execution = machine.run(input, runOptions(`${smArn}:${name}`.replace(':stateMachine:', ':execution:'), name));
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
console.log(JSON.stringify({ ...report, states, input, children }));
