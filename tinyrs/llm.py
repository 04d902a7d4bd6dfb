"""The one LLM client: every LLM call of the package (the CoT teacher, the GRPO judge, the
open-ended evaluation) goes through `LLMClient`, built on the `openai` package.

- Any OpenAI-compatible server: model, base URL and key from config and environment
  (OPENAI_API_KEY, OPENAI_BASE_URL): OpenAI, vLLM, `tinyrs serve` / `transformers serve`,
  Anthropic's OpenAI-compatible endpoint.
- Images go as base64 data URLs.
- An on-disk cache keyed by a hash of the full request: a re-run costs nothing, an interrupted
  run resumes.
- Bounded concurrency; retries with exponential backoff on 429, 5xx, timeouts and malformed
  replies. A final failure is recorded and returned as a result with `text=None`: it never
  crashes a long job and never borrows another request's answer.
- Token usage and cost per run (prices from the config, with their source).
- The API key is read from the environment when the client is built and kept only inside the
  openai client: it is not in the cache, the usage record, the failure log or any message.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import re
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from .data.images import ImageLoadError, load_rgb
from .prompts import JUDGE_SYSTEM, judge_text
from .redact import key_variable, looks_secret, redact, redact_values

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "0.0.0.0")


class LLMConfigError(ValueError):
    """The client cannot be built as configured (e.g. no API key for a remote server)."""


@dataclass
class LLMSettings:
    model: str = "gpt-4.1-mini"
    base_url: str | None = None  # None: $OPENAI_BASE_URL, else the openai package's default (api.openai.com)
    api_key_env: str = "OPENAI_API_KEY"  # the *name* of the variable; the key itself is never in a config
    temperature: float = 0.7
    max_tokens: int = 1024
    timeout: float = 60.0  # seconds per request
    max_retries: int = 4  # retries after the first attempt
    backoff: float = 1.0  # first backoff in seconds; doubles each retry (with jitter)
    backoff_max: float = 30.0
    workers: int = 8
    image_max_side: int | None = 1024  # images are downscaled to this before encoding (None: sent at full size)
    extra: dict = field(default_factory=dict)  # any other request field (top_p, seed, ...)

    @classmethod
    def from_config(cls, cfg: dict | None) -> "LLMSettings":
        cfg = dict(cfg or {})
        known = {k: cfg.pop(k) for k in list(cfg) if k in cls.__dataclass_fields__}
        return cls(**known)  # the remaining keys (backend, ...) belong to the caller


def image_data_url(image, max_side: int | None = 1024) -> str:
    """An image (path or PIL) as a base64 JPEG data URL, RGB, at most `max_side` pixels (None: any size)."""
    im = load_rgb(image) if isinstance(image, (str, Path)) else image.convert("RGB")
    if max_side and max(im.size) > max_side:
        im = im.copy()
        im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def user_message(text: str, images=(), image_first: bool = True) -> dict:
    pictures = [{"type": "image_url", "image_url": {"url": url}} for url in images]
    words = [{"type": "text", "text": text}]
    return {"role": "user", "content": pictures + words if image_first else words + pictures}


def _summarize_messages(messages: list[dict]) -> list[dict]:
    """Messages for the cache record, with each image replaced by a hash of its bytes."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            content = [{"type": "image_url", "sha256": hashlib.sha256(c["image_url"]["url"].encode()).hexdigest()[:16]}
                       if c.get("type") == "image_url" else c for c in content]
        out.append({"role": m["role"], "content": content})
    return out


@dataclass
class LLMResult:
    text: str | None  # a valid reply, or None after a final failure
    error: str | None = None
    attempts: int = 0
    cached: bool = False
    key: str = ""
    invalid_text: str | None = None  # the last reply that arrived but failed validation, if any


class Usage:
    """Thread-safe counters of one run: calls, cache hits, retries, failures and tokens."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = {"requests": 0, "api_calls": 0, "cache_hits": 0, "retries": 0, "failures": 0,
                       "prompt_tokens": 0, "completion_tokens": 0, "cached_prompt_tokens": 0}

    def add(self, **kw):
        with self._lock:
            for k, v in kw.items():
                self.counts[k] += int(v or 0)


class ResponseCache:
    """One JSON file per request, named by the request hash; written atomically."""

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder else None

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        if not self.folder:
            return None
        p = self._path(key)
        try:
            return json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, record: dict) -> None:
        if not self.folder:
            return
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        # unique per thread, process and host: GRPO's ranks on several nodes share one run's judge cache
        tmp = p.with_name(f".{p.name}.{socket.gethostname()}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False))
        os.replace(tmp, p)


class LLMClient:
    """See the module docstring. `complete()` is thread-safe; `map()` runs requests concurrently."""

    def __init__(self, settings: LLMSettings | dict | None = None, cache_dir: str | Path | None = None,
                 prices: dict | None = None, name: str = "llm"):
        import openai

        self.settings = settings if isinstance(settings, LLMSettings) else LLMSettings.from_config(settings)
        self.name = name
        self.base_url = self.settings.base_url or os.environ.get("OPENAI_BASE_URL") or None
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(self.settings.api_key_env)):
            raise LLMConfigError(f"{name}: api_key_env is the *name* of the environment variable that holds the key "
                                 "(e.g. OPENAI_API_KEY), not the key")
        if looks_secret(self.base_url or ""):  # user:key@host, ?key=...
            raise LLMConfigError(f"{name}: base_url carries credentials (a user and key before its @, or a key "
                                 f"parameter); give the key through {key_variable(self.settings.api_key_env)} "
                                 "instead (a URL is written to caches and reports)")
        key = os.environ.get(self.settings.api_key_env)
        if not key:
            if self.base_url and any(h in self.base_url for h in LOCAL_HOSTS):
                key = "EMPTY"  # local servers (vLLM, transformers serve) take any key
            else:
                raise LLMConfigError(f"{name}: set {key_variable(self.settings.api_key_env)} to the API key of "
                                     f"{self.base_url or 'api.openai.com'} (or point base_url at a local server)")
        self._secret = key
        self._openai = openai
        self._client = openai.OpenAI(api_key=key, base_url=self.base_url, timeout=self.settings.timeout,
                                     max_retries=0)  # retries are ours: one policy for every failure kind
        self.cache = ResponseCache(cache_dir)
        self.prices = prices or {}
        self.usage = Usage()
        self.failures: list[dict] = []
        self._lock = threading.Lock()

    # -- one request -----------------------------------------------------------------------------
    def request_body(self, messages: list[dict], **overrides) -> dict:
        s = self.settings
        return {"model": s.model, "messages": messages, "temperature": s.temperature, "max_tokens": s.max_tokens,
                **s.extra, **overrides}

    def request_key(self, body: dict, salt: str = "") -> str:
        """Hash of the full request (and the server it goes to); `salt` tells apart deliberate
        re-samples of the same request, e.g. a caption's second attempt."""
        blob = json.dumps({"body": body, "server": self.base_url or "openai", "salt": salt}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _retryable(self, e: Exception) -> bool:
        o = self._openai
        if isinstance(e, (o.RateLimitError, o.APITimeoutError, o.APIConnectionError, o.InternalServerError,
                          o.APIResponseValidationError, json.JSONDecodeError, ValueError, KeyError, TypeError)):
            return True
        return isinstance(e, o.APIStatusError) and (e.status_code >= 500 or e.status_code == 429)

    def complete(self, messages: list[dict], validate: Callable[[str], str | None] | None = None, salt: str = "",
                 **overrides) -> LLMResult:
        """One chat completion. `validate(text)` returns an error message for a malformed reply
        (retried like a transport error) or None. Never raises for a failed call."""
        body = self.request_body(messages, **overrides)
        key = self.request_key(body, salt)
        self.usage.add(requests=1)
        hit = self.cache.get(key)
        if hit is not None and hit.get("text") is not None and not (validate and validate(hit["text"])):
            self.usage.add(cache_hits=1)
            return LLMResult(text=hit["text"], attempts=0, cached=True, key=key)
        error = invalid = None
        s = self.settings
        for attempt in range(1 + s.max_retries):
            if attempt:
                self.usage.add(retries=1)
                time.sleep(min(s.backoff_max, s.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))
            try:
                self.usage.add(api_calls=1)
                resp = self._client.chat.completions.create(**body)
                u = getattr(resp, "usage", None)
                if u is not None:
                    details = getattr(u, "prompt_tokens_details", None)
                    self.usage.add(prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens,
                                   cached_prompt_tokens=getattr(details, "cached_tokens", 0) if details else 0)
                text = resp.choices[0].message.content
                if not isinstance(text, str):
                    raise ValueError(f"reply has no text content ({type(text).__name__})")
                problem = validate(text) if validate else None
                if problem:
                    invalid = text
                    raise ValueError(f"malformed reply: {problem}")
                self.cache.put(key, {"model": s.model, "server": self.base_url or "openai", "salt": salt,
                                     "messages": _summarize_messages(messages),
                                     "text": text.replace(self._secret, "***") if self._secret else text,
                                     "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
                return LLMResult(text=text, attempts=attempt + 1, key=key)
            except Exception as e:  # noqa: BLE001 - every failure is classified, recorded, never raised
                error = redact(f"{type(e).__name__}: {e}", self._secret)[:500]
                if not self._retryable(e):
                    break
        self.usage.add(failures=1)
        with self._lock:
            self.failures.append({"key": key, "error": error, "attempts": attempt + 1})
        return LLMResult(text=None, error=error, attempts=attempt + 1, key=key, invalid_text=invalid)

    def map(self, jobs: list[dict], workers: int | None = None, progress: bool = True, desc: str = "") -> list[LLMResult]:
        """Run many `complete(**job)` calls with at most `workers` in flight; results in input order."""
        workers = max(1, int(workers or self.settings.workers))
        with ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(self.complete, **job) for job in jobs]
            return [f.result() for f in tqdm(futures, desc=desc or self.name, disable=not progress, mininterval=1.0)]

    # -- accounting -------------------------------------------------------------------------------
    def usage_report(self) -> dict:
        c = dict(self.usage.counts)
        price = self.prices.get(self.settings.model)
        cost = None
        if price:
            uncached = c["prompt_tokens"] - c["cached_prompt_tokens"]
            cost = (uncached * price["input"] + c["cached_prompt_tokens"] * price.get("cached_input", price["input"])
                    + c["completion_tokens"] * price["output"]) / 1e6
        return {"name": self.name, "model": self.settings.model, "server": self.base_url or "api.openai.com",
                **c, "cost_usd": None if cost is None else round(cost, 6),
                "price_per_million": price, "settings": redact_values(asdict(self.settings)),
                "failures_detail": self.failures[:50]}

    def usage_line(self) -> str:
        r = self.usage_report()
        cost = "unknown price" if r["cost_usd"] is None else f"${r['cost_usd']:.4f}"
        return (f"{self.name} ({r['model']} at {r['server']}): {r['requests']} requests, {r['api_calls']} API calls, "
                f"{r['cache_hits']} cached, {r['retries']} retries, {r['failures']} failed; "
                f"{r['prompt_tokens']} prompt + {r['completion_tokens']} completion tokens; cost {cost}" +
                "".join(f"\n  failed {n}x: {error}" for error, n in
                        Counter(f["error"] for f in self.failures).most_common(3)))


# --- the judge -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
UNPARSABLE = "unparsable reply"  # a judge's reply without a number (the released code grades it 0)


def parse_judge_score(text: str | None) -> float | None:
    """The reply's first number, divided by 10 and clipped to [0, 1]; None if there is none."""
    m = _NUMBER.search(text or "")
    if not m:
        return None
    return min(1.0, max(0.0, float(m.group(0)) / 10.0))


class OpenAIJudge:
    """Grades an open-ended answer 0..10 with any OpenAI-compatible model (gpt-4.1-mini, temperature
    0.2 in the paper). A failed call or an unparsable reply gives None, recorded, never 0."""

    name = "openai"

    def __init__(self, client: LLMClient):
        self.client = client
        self.failures: list[dict] = []

    def messages(self, question: str, answer: str, image) -> list[dict]:
        """As the released GRPO code asks: its system prompt, then the question and answer, then the image."""
        return [{"role": "system", "content": JUDGE_SYSTEM},
                user_message(judge_text(question, answer), [image_data_url(image, self.client.settings.image_max_side)],
                             image_first=False)]

    def judgement(self, question: str, answer: str, image,
                  retry_unparsable: bool = True) -> tuple[float | None, str | None]:
        """(grade 0..1, None), or (None, why not): the image could not be read, the call failed, or
        UNPARSABLE, a reply without a number (after the client's retries; `retry_unparsable` False takes the
        first reply as it is, as the released code does)."""
        try:
            messages = self.messages(question, answer, image)
        except ImageLoadError as e:  # the judge cannot see the image: a failed judgement, recorded, never 0
            self.failures.append({"question": question[:200], "error": str(e)})
            return None, str(e)
        has_number = lambda t: None if parse_judge_score(t) is not None else "no number"  # noqa: E731
        res = self.client.complete(messages, validate=has_number if retry_unparsable else None)
        value = parse_judge_score(res.text)
        if value is None:  # a reply came back without a number, or none came
            why = UNPARSABLE if res.text is not None or res.invalid_text is not None else res.error or "failed call"
            self.failures.append({"question": question[:200], "error": res.error or why})
            return None, why
        return value, None

    def score(self, question: str, answer: str, image) -> float | None:
        return self.judgement(question, answer, image)[0]


def judge_map(judge, grade: Callable, items: list) -> list:
    """`grade(item)` for every item, in order: an LLM judge's calls go out together (its client's `workers`),
    any other judge's one after another."""
    client = getattr(judge, "client", None)
    workers = min(len(items), int(client.settings.workers)) if client is not None else 1
    if workers <= 1:
        return [grade(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(grade, items))


def profile_judge(profile: str, section: str = "judge", build_dir: str | Path | None = None,
                  cache_dir: str | Path | None = None):
    """The judge that section `section` of a profile's LLM config (tinyrs/configs/<profile>/llm.yaml) asks
    for, with the price table its cost accounting uses."""
    from .config import load_prices

    return make_judge(llm_section(profile, section), build_dir=build_dir, cache_dir=cache_dir, prices=load_prices())


def llm_section(profile: str, section: str):
    """Section `section` of a profile's LLM config (tinyrs/configs/<profile>/llm.yaml); an error naming it if absent."""
    from .config import ConfigError, load_config

    cfg = load_config(profile, "llm")
    if section not in cfg:
        raise ConfigError(f"the {profile} LLM config has no section {section!r} (tinyrs/configs/{profile}/llm.yaml)")
    return cfg[section]


def make_judge(cfg: dict, build_dir: str | Path | None = None, cache_dir: str | Path | None = None,
               prices: dict | None = None):
    """The judge a config asks for: backend 'openai' (any OpenAI-compatible model), 'rules' (the toy
    world's offline stand-in, which needs the build's scenes.jsonl) or 'overlap' (the toy's second
    evaluator for Table VI, same needs)."""
    backend = cfg.get("backend", "rules")
    if backend == "openai":
        return OpenAIJudge(LLMClient(cfg, cache_dir=cache_dir, prices=prices, name="judge"))
    if backend in ("rules", "overlap"):
        from .world.grading import OverlapJudge, RulesJudge

        if build_dir is None:
            raise LLMConfigError(f"the {backend} judge needs the toy build folder (its scenes.jsonl)")
        return (RulesJudge if backend == "rules" else OverlapJudge)(build_dir)
    raise LLMConfigError(f"unknown judge backend {backend!r}: use 'openai', 'rules' or 'overlap'")
