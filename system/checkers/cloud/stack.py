"""One stack of template.yaml, run on this machine the way AWS would run it.

    python system/checkers/cloud/stack.py SPEC_JSON

SPEC_JSON: {"name": "rps-prod", "params": {...the template's parameters...},
            "region": "us-east-1", "moto": "http://127.0.0.1:PORT", "bucket": "<name>",
            "build_dir": ".aws-sam/build", "env": {...set on every function...},
            "out": "<file the runner writes when ready>"}

- SAM's translator expands the template for those parameters (system/checkers/cloud/sam.py); the
  bucket is the moto bucket given, every other name as CloudFormation would make it.
- Each function's role becomes an IAM user in moto with exactly the role's inline
  policies, and its own access key. moto then enforces IAM (`/moto-api/reset-auth 0`):
  S3 by action and object ARN; other services by action (moto matches a non-S3
  resource only as "*", so a secret's ARN scoping is checked statically instead, by
  system/checkers/infra/check_stacks.py). The harness keeps an admin user.
- The Lambda service: `POST /2015-03-31/functions/<name or ARN>/invocations` runs the
  function's `bootstrap` from `sam build` (one instance per function, started at the
  first invoke as a cold start, kept warm) under the Lambda Runtime API, with the
  environment the template gives it plus its credentials. It enforces what Lambda
  does: the function's timeout (Sandbox.Timedout, the instance killed), its memory
  size (Runtime.OutOfMemory), a runtime that exits (Runtime.ExitError), 6 MB request
  and response payloads, the 10 s init phase; a function error is 200 with
  X-Amz-Function-Error, as on AWS. An unknown function is a 404.

Without "params", SPEC_JSON's "functions" ({binary: {"code": dir, "env", "memory",
"timeout"}}) are run as given, with no template and no IAM: the Lambda service alone.

Writes SPEC.out (JSON) when ready: {"invoke": URL, "functions": {binary: {name, arn,
...}}, "definition": <the state machine, substitutions applied>, "topics", "bus",
"rules": [{logical, bus, pattern, input_transformer}], "admin": {key, secret},
"credentials": {binary: {key, secret}} (and "state-machine"), "state_machine": {arn, name},
"logs": dir}. Runs until killed. SPEC.objects ({key: text}) are put in the bucket before
the functions start.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sam  # noqa: E402

PAYLOAD_LIMIT = 6 * 1024 * 1024
INIT_LIMIT_S = 10.0


def moto_policy(doc: dict) -> dict:
    """A role policy as moto can evaluate it: moto compares a non-S3 resource only with
    "*" and reads `?` as a regex, so those statements get "*" (their ARN scoping is
    checked statically); S3 statements are kept as written."""
    out = []
    for st in sam._listed(doc.get("Statement", [])):
        st = dict(st)
        actions = [a.lower() for a in sam._listed(st.get("Action", []))]
        if not all(a.startswith("s3:") for a in actions):
            st["Resource"] = "*"
        st.pop("Condition", None)  # moto ignores conditions on Allow; keep it explicit
        out.append(st)
    return {"Version": "2012-10-17", "Statement": out}


class Instance:
    """One warm instance of a function: its process and its Runtime API."""

    def __init__(self, fn: "Function"):
        self.fn = fn
        self.events: queue.Queue = queue.Queue()
        self.results: dict[str, queue.Queue] = {}
        self.ready = threading.Event()
        self.init_error: dict | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        env = dict(fn.env)
        env.update({
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.server.server_address[1]}",
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
            "_HANDLER": "bootstrap",
            "LAMBDA_TASK_ROOT": str(fn.code),
        })
        self.log = open(fn.log_path, "ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([str(fn.code / "bootstrap")], env=env, cwd=fn.code,
                                     stdout=self.log, stderr=self.log, start_new_session=True)

    def _handler(self):
        inst = self

        class Runtime(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.reply(404)
                inst.ready.set()
                rid, event, deadline = inst.events.get()
                self.reply(200, event, {
                    "Lambda-Runtime-Aws-Request-Id": rid,
                    "Lambda-Runtime-Deadline-Ms": str(int(deadline * 1000)),
                    "Lambda-Runtime-Invoked-Function-Arn": inst.fn.arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
                    "Content-Type": "application/json",
                })

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.endswith("/runtime/init/error"):
                    inst.init_error = _error_body(body, "Runtime.InitError")
                    inst.ready.set()
                    return self.reply(202)
                parts = self.path.split("/invocation/")
                if len(parts) != 2:
                    return self.reply(404)
                rid, kind = parts[1].split("/", 1)
                box = inst.results.get(rid)
                if box is None:
                    return self.reply(400, b'{"errorType":"InvalidRequestID"}')
                if kind == "response":
                    box.put(("ok", body))
                else:
                    box.put(("error", body))
                self.reply(202)

        return Runtime

    def alive(self) -> bool:
        return self.proc.poll() is None

    def peak_mb(self) -> float:
        try:
            for line in open(f"/proc/{self.proc.pid}/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        self.server.shutdown()
        self.log.close()


def _error_body(body: bytes, default_type: str) -> dict:
    try:
        e = json.loads(body or b"{}")
    except ValueError:
        e = {}
    return {"errorType": e.get("errorType") or default_type, "errorMessage": e.get("errorMessage", "")}


class Function:
    def __init__(self, binary: str, spec: dict, code: Path, env: dict, log_dir: Path):
        self.binary = binary
        self.name = spec["name"]
        self.arn = spec["arn"]
        self.memory = spec["memory"]
        self.timeout = spec["timeout"]
        self.code = code
        self.env = env
        self.log_path = log_dir / f"{binary}.log"
        self.lock = threading.Lock()  # one invocation at a time on the one instance
        self.instance: Instance | None = None
        self.cold_starts = 0

    def invoke(self, event: bytes) -> tuple[bool, bytes]:
        """(ok, payload); a failure's payload is Lambda's error object."""
        with self.lock:
            if self.instance is None or not self.instance.alive():
                self.instance = Instance(self)
                self.cold_starts += 1
                # Lambda gives init 10 s, then retries it within the invocation's timeout.
                if not self.instance.ready.wait(INIT_LIMIT_S + self.timeout) and self.instance.alive():
                    self.instance.kill()
                    self.instance = None
                    return False, self._error("Runtime.InitTimeout", f"the init phase took over {INIT_LIMIT_S:.0f} s")
                if self.instance.init_error or not self.instance.alive():
                    err = self.instance.init_error or {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"Runtime exited with error: exit status {self.instance.proc.poll()}",
                    }
                    self.instance.kill()
                    self.instance = None
                    return False, json.dumps(err).encode()
            inst = self.instance
            rid = str(uuid.uuid4())
            box: queue.Queue = queue.Queue()
            inst.results[rid] = box
            deadline = time.time() + self.timeout
            inst.events.put((rid, event, deadline))
            while True:
                try:
                    kind, body = box.get(timeout=0.05)
                    break
                except queue.Empty:
                    pass
                if inst.peak_mb() > self.memory:
                    inst.kill()
                    self.instance = None
                    return False, self._error("Runtime.OutOfMemory", f"Runtime exited with error: signal: killed (memory over {self.memory} MB)", rid)
                if not inst.alive():
                    code = inst.proc.poll()
                    inst.kill()
                    self.instance = None
                    return False, self._error("Runtime.ExitError", f"Runtime exited with error: exit status {code}", rid)
                if time.time() > deadline:
                    inst.kill()
                    self.instance = None
                    return False, self._error("Sandbox.Timedout", f"Task timed out after {self.timeout:.2f} seconds", rid)
            del inst.results[rid]
            if kind == "ok" and len(body) > PAYLOAD_LIMIT:
                return False, self._error("Function.ResponseSizeTooLarge", f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size ({PAYLOAD_LIMIT} bytes).", rid)
            if kind == "ok":
                return True, body
            return False, json.dumps(_error_body(body, "Unhandled")).encode()

    def _error(self, kind: str, message: str, rid: str = "") -> bytes:
        return json.dumps({"errorType": kind, "errorMessage": f"RequestId: {rid} Error: {message}".strip()}).encode()

    def log_tail(self, limit: int = 4096) -> str:
        try:
            data = self.log_path.read_bytes()[-limit:]
        except OSError:
            data = b""
        return base64.b64encode(data).decode()


def lambda_service(functions: dict[str, Function], harness) -> ThreadingHTTPServer:
    by_name = {}
    for f in functions.values():
        by_name[f.name] = f
        by_name[f.arn] = f

    class Invoke(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status: int, body: bytes, headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path.startswith("/harness/"):
                status, body = harness(self.path, b"")
                return self.reply(status, body)
            self.reply(404, b"{}")

        def do_POST(self):
            if self.path.startswith("/harness/"):
                status, body = harness(self.path, self.rfile.read(int(self.headers.get("Content-Length", 0))))
                return self.reply(status, body)
            parts = self.path.split("?")[0].split("/")
            # /2015-03-31/functions/<name>/invocations
            if len(parts) != 5 or parts[1] != "2015-03-31" or parts[2] != "functions" or parts[4] != "invocations":
                return self.reply(404, b'{"message":"unknown operation"}', {"x-amzn-ErrorType": "UnknownOperationException"})
            length = int(self.headers.get("Content-Length", 0))
            event = self.rfile.read(length) or b"{}"
            fn = by_name.get(unquote(parts[3]))
            if fn is None:
                msg = json.dumps({"Type": "User", "message": f"Function not found: {unquote(parts[3])}"}).encode()
                return self.reply(404, msg, {"x-amzn-ErrorType": "ResourceNotFoundException"})
            if length > PAYLOAD_LIMIT:
                msg = json.dumps({"Type": "User", "message": f"Request must be smaller than {PAYLOAD_LIMIT} bytes for the InvokeFunction operation"}).encode()
                return self.reply(413, msg, {"x-amzn-ErrorType": "RequestEntityTooLargeException"})
            ok, payload = fn.invoke(event)
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            if self.headers.get("X-Amz-Log-Type") == "Tail":
                headers["X-Amz-Log-Result"] = fn.log_tail()
            if not ok:
                headers["X-Amz-Function-Error"] = "Unhandled"
            self.reply(200, payload, headers)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_out(spec: dict, out: dict) -> None:
    tmp = Path(spec["out"] + ".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.rename(spec["out"])


def serve_until_stopped(functions: dict[str, Function], server: ThreadingHTTPServer) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    for f in functions.values():
        if f.instance:
            f.instance.kill()
    server.shutdown()


def functions_only(spec: dict) -> None:
    """The Lambda service for functions given as they are (no template, no IAM)."""
    log_dir = Path(spec["out"]).parent / "lambda-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    functions = {}
    for binary, f in spec["functions"].items():
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **{k: str(v) for k, v in f.get("env", {}).items()}}
        fn = {"name": binary, "arn": f"arn:aws:lambda:us-east-1:{sam.ACCOUNT}:function:{binary}",
              "memory": f.get("memory", 128), "timeout": f.get("timeout", 30)}
        functions[binary] = Function(binary, fn, Path(f["code"]), env, log_dir)
    server = lambda_service(functions, lambda path, body: (404, b"{}"))
    write_out(spec, {"invoke": f"http://127.0.0.1:{server.server_address[1]}", "logs": str(log_dir),
                     "functions": {b: {"name": f.name, "arn": f.arn} for b, f in functions.items()}})
    serve_until_stopped(functions, server)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    if "params" not in spec:
        return functions_only(spec)
    import boto3

    region = spec.get("region", "us-east-1")
    os.environ["AWS_DEFAULT_REGION"] = region
    stack = sam.Stack.of(spec["name"], spec["params"], region, {"DataBucket": spec["bucket"]})
    build_dir = Path(spec["build_dir"])
    log_dir = Path(spec["out"]).parent / "lambda-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    moto = spec["moto"]

    def client(service: str, key: str = "testing", secret: str = "testing"):
        return boto3.client(service, endpoint_url=moto, region_name=region,
                            aws_access_key_id=key, aws_secret_access_key=secret)

    iam = client("iam")
    iam.create_user(UserName="harness-admin")
    iam.put_user_policy(UserName="harness-admin", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    admin = iam.create_access_key(UserName="harness-admin")["AccessKey"]

    functions: dict[str, Function] = {}
    credentials = {}
    specs = stack.functions()
    for binary, fn in specs.items():
        user = f"role-{fn['role']}"[:64]
        iam.create_user(UserName=user)
        for i, doc in enumerate(fn["policies"]):
            iam.put_user_policy(UserName=user, PolicyName=f"inline{i}", PolicyDocument=json.dumps(moto_policy(doc)))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        credentials[binary] = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
        env = {k: str(v) for k, v in fn["env"].items()}
        env.update({k: str(v) for k, v in spec.get("env", {}).items()})
        env.update({
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_ENDPOINT_URL": moto,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        })
        code = build_dir / fn["logical"]
        if not (code / "bootstrap").is_file():
            sys.exit(f"{code}/bootstrap is missing: run `sam build` first (scripts/sam-build.sh)")
        functions[binary] = Function(binary, fn, code, env, log_dir)

    # The state machine's role, as a user of its own: the fan-out's ItemReader reads S3
    # with it (moto enforcing its policies); its other actions are judged by them here.
    sm_logical = stack.of_type("AWS::StepFunctions::StateMachine")[0]
    sm_role_arn = stack.properties(sm_logical)["RoleArn"]
    sm_role = next(k for k in stack.of_type("AWS::IAM::Role") if stack.arn(k) == sm_role_arn)
    sm_policies = stack.role_policies(sm_role)
    iam.create_user(UserName=f"role-{sm_role}"[:64])
    for i, doc in enumerate(sm_policies):
        iam.put_user_policy(UserName=f"role-{sm_role}"[:64], PolicyName=f"inline{i}", PolicyDocument=json.dumps(moto_policy(doc)))
    sm_key = iam.create_access_key(UserName=f"role-{sm_role}"[:64])["AccessKey"]
    credentials["state-machine"] = {"key": sm_key["AccessKeyId"], "secret": sm_key["SecretAccessKey"]}
    policies = {b: f["policies"] for b, f in specs.items()}
    policies["state-machine"] = sm_policies

    # Objects the stack expects to find (the locations file), put as an admin would.
    admin_put = client("s3", admin["AccessKeyId"], admin["SecretAccessKey"])
    for key, body in spec.get("objects", {}).items():
        admin_put.put_object(Bucket=spec["bucket"], Key=key, Body=body.encode())

    if "outputs" in spec:
        # The deployed stack as CloudFormation describes it (what scripts/ci/stack-env.sh
        # reads): its outputs, from this local stack.
        sm = stack.of_type("AWS::StepFunctions::StateMachine")[0]
        outputs = {
            "DataBucketName": spec["bucket"],
            "StateMachineArn": stack.arn(sm),
            "VerifyFunctionName": specs["rps-verify"]["name"],
            **spec["outputs"],
        }
        client("cloudformation").create_stack(StackName=spec["name"], TemplateBody=json.dumps({
            "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }))

    # From here on moto enforces IAM: only the admin and the functions' keys work.
    # (A form body is not read by moto: the count must come as JSON.)
    urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset-auth", data=b"0", method="POST",
                                                  headers={"Content-Type": "application/json"})).read()

    from urllib.parse import parse_qs, urlsplit

    import botocore.exceptions

    admin_s3 = client("s3", admin["AccessKeyId"], admin["SecretAccessKey"])
    as_fn = {b: client("s3", c["key"], c["secret"]) for b, c in credentials.items()}

    def harness(path: str, body: bytes) -> tuple[int, bytes]:
        """The test's own view of the bucket (admin), and a probe of what one function's
        credentials may do: GET /harness/keys?prefix=, GET /harness/object?key=,
        POST /harness/bucket?name= (another bucket, as an admin would create it),
        POST /harness/try?as=<binary>&op=put|get|delete|list&key=; GET /harness/read?as=&key=
        (the object as that role reads it, or its S3 error); GET /harness/allows?as=&action=
        &resource= (whether that role's policies allow it: {"allowed": bool})."""
        url = urlsplit(path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if url.path == "/harness/keys":
                pages = admin_s3.get_paginator("list_objects_v2").paginate(Bucket=spec["bucket"], Prefix=q.get("prefix", ""))
                keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
                return 200, json.dumps(keys).encode()
            if url.path == "/harness/bucket":
                admin_s3.create_bucket(Bucket=q["name"])
                return 200, b"{}"
            if url.path == "/harness/peaks":
                # Each function's instance: its peak resident memory so far (MB).
                peaks = {b: round(f.instance.peak_mb(), 1) for b, f in functions.items() if f.instance}
                return 200, json.dumps(peaks).encode()
            if url.path == "/harness/read":
                return 200, as_fn[q["as"]].get_object(Bucket=spec["bucket"], Key=q["key"])["Body"].read()
            if url.path == "/harness/allows":
                allowed = sam.allows(policies[q["as"]], q["action"], q["resource"])
                return 200, json.dumps({"allowed": allowed}).encode()
            if url.path == "/harness/object":
                return 200, admin_s3.get_object(Bucket=spec["bucket"], Key=q["key"])["Body"].read()
            if url.path == "/harness/try":
                s3, key, op = as_fn[q["as"]], q.get("key", ""), q["op"]
                if op == "put":
                    s3.put_object(Bucket=spec["bucket"], Key=key, Body=body)
                elif op == "get":
                    s3.get_object(Bucket=spec["bucket"], Key=key)["Body"].read()
                elif op == "delete":
                    s3.delete_object(Bucket=spec["bucket"], Key=key)
                elif op == "list":
                    s3.list_objects_v2(Bucket=spec["bucket"], Prefix=key)
                return 200, json.dumps({"status": 200}).encode()
        except botocore.exceptions.ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
            code = e.response.get("Error", {}).get("Code", "")
            if url.path == "/harness/try":
                return 200, json.dumps({"status": status, "code": code}).encode()
            return status, json.dumps({"code": code}).encode()
        return 404, b"{}"

    server = lambda_service(functions, harness)
    definition, _ = stack.state_machine()
    rules = []
    for logical in stack.of_type("AWS::Events::Rule"):
        p = stack.properties(logical)
        target = p["Targets"][0]
        rules.append({"logical": logical, "bus": p.get("EventBusName", "default"), "pattern": p["EventPattern"],
                      "input_transformer": target.get("InputTransformer")})
    out = {
        "invoke": f"http://127.0.0.1:{server.server_address[1]}",
        "functions": {b: {k: v for k, v in s.items() if k != "policies"} for b, s in specs.items()},
        "definition": definition,
        "topics": {stack.physical_name(t): stack.arn(t) for t in stack.of_type("AWS::SNS::Topic")},
        "state_machine": {"arn": stack.arn(sm_logical), "name": stack.physical_name(sm_logical)},
        "bucket": spec["bucket"],
        "bus": [stack.physical_name(b) for b in stack.of_type("AWS::Events::EventBus")],
        "rules": rules,
        "admin": {"key": admin["AccessKeyId"], "secret": admin["SecretAccessKey"]},
        "credentials": credentials,
        "logs": str(log_dir),
    }
    write_out(spec, out)
    serve_until_stopped(functions, server)


if __name__ == "__main__":
    main()
