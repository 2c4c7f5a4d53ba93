"""The Lambda Runtime API, enough of it to time a function binary the way AWS reports
it: Init Duration (process start to its first `next` request), each invocation's
duration, and the process's peak memory (VmHWM) after its last event.

    python bench/lambda_runtime.py <binary> <event JSON> [<event JSON> ...]

Prints one JSON line: {"init_ms", "invocations": [{"ms", "ok", "body"}], "peak_mb"}.
The environment of this script is the function's (RPS_STORE and so on).
"""
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

binary, events = sys.argv[1], [json.loads(e) for e in sys.argv[2:]]
pending = queue.Queue()
for e in events:
    pending.put(e)
results = queue.Queue()
first_next = threading.Event()
state = {"first_next": None, "sent": {}}


class Runtime(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if not self.path.endswith("/invocation/next"):
            self.send_error(404)
            return
        if state["first_next"] is None:
            state["first_next"] = time.monotonic()
            first_next.set()
        event = pending.get()  # blocks until there is one (or forever, after the last)
        rid = str(uuid.uuid4())
        state["sent"][rid] = time.monotonic()
        body = json.dumps(event).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", rid)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:rps")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode()
        rid = self.path.split("/invocation/")[-1].split("/")[0]
        took = (time.monotonic() - state["sent"].pop(rid, time.monotonic())) * 1000
        results.put({"ms": round(took, 1), "ok": self.path.endswith("/response"), "body": json.loads(body or "null")})
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Runtime)
threading.Thread(target=server.serve_forever, daemon=True).start()
env = dict(os.environ)
env.update({
    "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
    "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
})
started = time.monotonic()
proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
first_next.wait(timeout=60)
init_ms = (state["first_next"] - started) * 1000 if state["first_next"] else None
invocations = [results.get(timeout=900) for _ in events]
peak_kb = 0
with open(f"/proc/{proc.pid}/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            peak_kb = int(line.split()[1])
proc.kill()
print(json.dumps({"init_ms": init_ms and round(init_ms, 1), "invocations": invocations, "peak_mb": round(peak_kb / 1024, 1)}))
