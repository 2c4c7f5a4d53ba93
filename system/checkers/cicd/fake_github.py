"""Enough of GitHub's repository rulesets API to test scripts/ci/apply-rulesets.sh:
GET/POST /repos/{repo}/rulesets and PUT /repos/{repo}/rulesets/{id}, with a bearer
token required. Writes its port to argv[1] and, after each change, the rulesets it
holds to argv[2] (JSON).

    python system/checkers/cicd/fake_github.py PORT_FILE STATE_FILE TOKEN
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, state_file, token = sys.argv[1:4]
rulesets: dict[int, dict] = {}


class Api(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        if self.headers.get("Authorization") != f"Bearer {token}":
            self.answer(401, {"message": "Bad credentials"})
            return False
        return True

    def body(self):
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def save(self):
        json.dump(list(rulesets.values()), open(state_file, "w"))

    def do_GET(self):
        if self.authorized():
            self.answer(200, [{"id": i, "name": r["name"]} for i, r in rulesets.items()])

    def do_POST(self):
        if not self.authorized():
            return
        r = self.body()
        if any(x["name"] == r["name"] for x in rulesets.values()):
            return self.answer(422, {"message": "Name must be unique"})
        i = len(rulesets) + 1
        rulesets[i] = {**r, "id": i}
        self.save()
        self.answer(201, rulesets[i])

    def do_PUT(self):
        if not self.authorized():
            return
        i = int(self.path.rstrip("/").rsplit("/", 1)[-1])
        if i not in rulesets:
            return self.answer(404, {"message": "Not Found"})
        rulesets[i] = {**self.body(), "id": i, "updated": rulesets[i].get("updated", 0) + 1}
        self.save()
        self.answer(200, rulesets[i])


server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
open(port_file, "w").write(str(server.server_address[1]))
server.serve_forever()
