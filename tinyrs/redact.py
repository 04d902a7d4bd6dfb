"""Secrets out of every message, record and printed line: one place that knows what a credential looks like.

Keys belong in the environment (`$OPENAI_API_KEY`, `$HF_TOKEN`); a value on the command line or in a
config that looks like one is masked wherever the package echoes it (errors, run records, launch lines).
"""
from __future__ import annotations

import re

PATTERNS = [
    (re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}"), "sk-***"),  # OpenAI / Anthropic-style keys
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), "hf_***"),  # Hugging Face tokens (34 characters; not hf_models/)
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-]{6,}"), r"\1 ***"),  # an Authorization header quoted back
    (re.compile(r"(://)[^/\s@'\"]+@"), r"\1***@"),  # user:key@ in a URL
    (re.compile(r"\b([\w.]*(?:api_key|token|secret|password))(\s*[=:]\s*)(?!\*\*\*)['\"]?[^\s,'\")]+",
                re.I), r"\1\2***"),  # key=value where the name says it is a secret
]


def redact(text, secret: str | None = None) -> str:
    """`text` with `secret` and anything shaped like a credential replaced by ***."""
    text = str(text)
    if secret:
        text = text.replace(secret, "***")
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_values(obj):
    """A JSON-like record with every string in it passed through `redact` (a recipe, a run record)."""
    if isinstance(obj, dict):
        return {k: redact_values(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_values(v) for v in obj]
    return redact(obj) if isinstance(obj, str) else obj


def looks_secret(text) -> bool:
    return redact(text) != str(text)
