"""Secrets out of every message, record and printed line: one place that knows what a credential looks like.

Keys belong in the environment (`$OPENAI_API_KEY`, `$HF_TOKEN`); a value on the command line or in a
config that looks like one is masked wherever the package echoes it (errors, run records, launch lines).
"""
from __future__ import annotations

import re

# a name that says its value is a credential: api_key, x-api-key, apikey, token, hub_token, secret, password, ...
SECRET_NAME = r"[\w.-]*(?:api[_-]?key|apikey|token|secret|password|authorization)"
PATTERNS = [
    (re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}"), "sk-***"),  # OpenAI / Anthropic-style keys
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), "hf_***"),  # Hugging Face tokens (34 characters; not hf_models/)
    (re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]{6,}"), r"\1 ***"),  # an Authorization header
    (re.compile(r"(://)[^/\s@'\"]+@"), r"\1***@"),  # user:key@ in a URL
    (re.compile(r"([?&](?:key|sig|access_token|" + SECRET_NAME + r")=)[^&#\s'\"]+", re.I), r"\1***"),  # ?key= in a URL
    # name=value / name: value / "name": "value" where the name says it is a secret; a quoted value to its quote
    (re.compile(r"\b(" + SECRET_NAME + r")(['\"]?\s*[=:]\s*)(?!\*\*\*)(?:'[^']*'|\"[^\"]*\"|[^\s,'\")}\]]+)", re.I),
     r"\1\2***"),
]
# a record's field whose text value is a credential whatever it looks like (not eos_token, max_tokens, api_key_env)
SECRET_FIELD = re.compile(r"(?:^|[_.-])(?:api[_-]?key|apikey|secret|password|authorization|hub_token)$|^token$", re.I)
# a variable's name as people write them (OPENAI_API_KEY); a key pasted where its name belongs rarely looks like one
VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


def key_variable(name) -> str:
    """How a message or record may show an `api_key_env` value: `$NAME` when it looks like a variable's name,
    else a description (it may be the key itself, pasted where its name belongs)."""
    if VARIABLE_NAME.fullmatch(str(name)):
        return f"${name}"
    return "the environment variable that api_key_env names (its value is not shown: it may be a key)"


def redact(text, secret: str | None = None) -> str:
    """`text` with `secret` and anything shaped like a credential replaced by ***."""
    text = str(text)
    if secret:
        text = text.replace(secret, "***")
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_values(obj):
    """A JSON-like record with every string in it passed through `redact` (a recipe, a run record), the text
    of a field named like a credential (token, api_key, password, ...) masked whatever it looks like, and an
    `api_key_env` that is not a variable's name."""
    if isinstance(obj, dict):
        return {k: "***" if isinstance(v, str) and v and (SECRET_FIELD.search(str(k)) or (
                    k == "api_key_env" and not VARIABLE_NAME.fullmatch(v))) else redact_values(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_values(v) for v in obj]
    return redact(obj) if isinstance(obj, str) else obj


def looks_secret(text) -> bool:
    return redact(text) != str(text)
