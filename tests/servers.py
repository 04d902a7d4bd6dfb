"""Real servers on loopback for the LLM-client tests (no mocks).

FaultServer: a minimal OpenAI-compatible /v1/chat/completions that misbehaves on request. A
request whose text contains `[fault=a,b,c]` gets behaviour a on its first attempt, b on the
second, and so on (the last one repeats): 429, 500, slow (sleeps past the client timeout),
badjson (200 with a broken body), notags (a reply without the tags), wrong (tags, wrong answer),
401, ok. An `ok` reply is built from *that* request, so a reused answer is detectable.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_text(body: dict) -> str:
    parts = []
    for m in body.get("messages", []):
        c = m.get("content")
        if isinstance(c, str):
            parts.append(c)
        else:
            parts += [p.get("text", "") for p in c if p.get("type") == "text"]
    return "\n".join(parts)


class FaultServer:
    def __init__(self, slow_seconds: float = 2.0, delay: float = 0.0, judge_reply: str = "7"):
        self.slow_seconds, self.delay, self.judge_reply = slow_seconds, delay, judge_reply
        self.attempts: dict[str, int] = {}
        self.auth_headers: set[str] = set()
        self.images_seen = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.auth_headers.add(self.headers.get("Authorization", ""))
                server.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def behaviour(self, text: str) -> str:
        m = re.search(r"\[fault=([a-z0-9,]+)\]", text)
        plan = m.group(1).split(",") if m else ["ok"]
        key = text
        with self.lock:
            n = self.attempts.get(key, 0)
            self.attempts[key] = n + 1
        return plan[min(n, len(plan) - 1)]

    def reply_for(self, body: dict, text: str, kind: str) -> str:
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        if "grade" in system:  # the judge
            return self.judge_reply if kind == "ok" else "I cannot tell."
        answer = re.search(r"Reference answer \(metadata, do not cite it\): (.*)", text)
        answer = answer.group(1).strip() if answer else "?"
        question = re.search(r"Question: (.*)", text)
        question = question.group(1) if question else ""
        if kind == "notags":
            return f"I think the answer is {answer}."
        if kind == "wrong":
            answer = "something else entirely"
        return (f"<reasoning>Looking at this image for the question '{question}', I examine the land cover, the "
                f"objects and their positions carefully.</reasoning><answer>{answer}</answer>")

    def handle(self, h: BaseHTTPRequestHandler, body: dict):
        text = request_text(body)
        with self.lock:
            self.images_seen += sum(1 for m in body["messages"] if isinstance(m.get("content"), list)
                                    for p in m["content"] if p.get("type") == "image_url")
        kind = self.behaviour(text)
        if self.delay:
            time.sleep(self.delay)
        if kind in ("429", "500", "401"):
            message = f"injected {kind}"
            if kind == "401":  # as real providers do: the rejected key is quoted back in the error
                message = f"Incorrect API key provided: {h.headers.get('Authorization', '')[7:]}"
            payload = json.dumps({"error": {"message": message, "type": "test"}}).encode()
            h.send_response(int(kind))
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        if kind == "slow":
            time.sleep(self.slow_seconds)
        if kind == "badjson":
            payload = b'{"id": "x", "choices": [{"message": {"content": "<reas'
        else:
            content = self.reply_for(body, text, kind)
            payload = json.dumps({
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}).encode()
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): exactly what a slow reply is for


class ServedCheckpoint:
    """`tinyrs serve CHECKPOINT`: transformers' OpenAI-compatible server in a subprocess."""

    def __init__(self, checkpoint, log_path):
        self.checkpoint, self.port = str(checkpoint), free_port()
        self.log = open(log_path, "w")
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "tinyrs.serve", self.checkpoint, "--host", "127.0.0.1",
                                      "--port", str(self.port), "--device", "cpu"], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tinyrs serve exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("tinyrs serve did not come up within 120 s")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
