"""The one LLM client against real servers on loopback: retries, final failures, caching, cost, secrets."""
import base64
import io
import json

import pytest
from PIL import Image

from servers import FaultServer
from tinyrs.llm import (UNPARSABLE, LLMClient, LLMConfigError, LLMSettings, OpenAIJudge, image_data_url,
                        parse_judge_score, redact, user_message)

FAST = dict(timeout=0.5, max_retries=3, backoff=0.01, backoff_max=0.05, workers=4, model="test-model")
PRICES = {"test-model": {"input": 1.0, "output": 2.0, "source": "a test price"}}


def msgs(text):
    return [{"role": "system", "content": "You write reasoning."}, user_message(f"Question: {text}\nReference answer "
                                                                               f"(metadata, do not cite it): ans-{text}")]


def has_tags(text):
    return None if "<answer>" in text else "no tags"


@pytest.fixture()
def server():
    with FaultServer(slow_seconds=1.5) as s:
        yield s


def client(server, tmp_path, **kw):
    return LLMClient(LLMSettings(base_url=server.url, **{**FAST, **kw}), cache_dir=tmp_path / "cache", prices=PRICES)


@pytest.mark.parametrize("plan", ["429,ok", "500,500,ok", "slow,ok", "badjson,ok", "notags,ok", "429,500,slow,ok"])
def test_transient_faults_are_retried_until_the_answer_comes(server, tmp_path, plan):
    c = client(server, tmp_path)
    res = c.complete(msgs(f"q [fault={plan}]"), validate=has_tags)
    assert res.text is not None and f"ans-q [fault={plan}]" in res.text
    assert res.attempts == len(plan.split(","))
    assert c.usage.counts["retries"] == res.attempts - 1 and c.usage.counts["failures"] == 0


def test_final_failure_is_recorded_and_nothing_else_is_lost(server, tmp_path):
    c = client(server, tmp_path)
    jobs = [{"messages": msgs(f"s{i}" + (" [fault=429]" if i == 3 else " [fault=500,ok]" if i % 2 else "")),
             "validate": has_tags} for i in range(10)]
    results = c.map(jobs, progress=False)
    assert results[3].text is None and "RateLimitError" in results[3].error and results[3].attempts == 4
    for i, r in enumerate(results):
        if i != 3:  # every other sample gets its own answer, never sample 3's or a neighbour's
            assert r.text is not None and f"ans-s{i}" in r.text and f"ans-s{i + 1}" not in r.text
    assert c.usage.counts["failures"] == 1 and len(c.failures) == 1
    assert c.usage_report()["failures"] == 1


def test_client_errors_are_not_retried(server, tmp_path):
    c = client(server, tmp_path)
    res = c.complete(msgs("bad key [fault=401]"))
    assert res.text is None and res.attempts == 1 and "AuthenticationError" in res.error
    assert "failed 1x: AuthenticationError" in c.usage_line()  # the reason is printed, not only counted


def test_cache_makes_a_rerun_free_and_holds_no_secret(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-abcdef123456")
    c = client(server, tmp_path)
    first = c.map([{"messages": msgs(f"c{i}")} for i in range(6)], progress=False)
    calls = c.usage.counts["api_calls"]
    c2 = client(server, tmp_path)
    second = c2.map([{"messages": msgs(f"c{i}")} for i in range(6)], progress=False)
    assert [r.text for r in first] == [r.text for r in second]
    assert c2.usage.counts["api_calls"] == 0 and c2.usage.counts["cache_hits"] == 6 and calls == 6
    # a different sampling of the same request is a different cache entry
    assert not c2.complete(msgs("c0"), salt="attempt-1").cached
    assert "Bearer sk-test-SECRET-abcdef123456" in server.auth_headers  # the key was really used...
    for f in (tmp_path / "cache").rglob("*"):
        if f.is_file():
            assert "SECRET" not in f.read_text()  # ...and never stored
    assert "SECRET" not in json.dumps(c2.usage_report())


def test_usage_and_cost(server, tmp_path):
    c = client(server, tmp_path)
    c.map([{"messages": msgs(f"u{i}")} for i in range(5)], progress=False)
    r = c.usage_report()
    assert (r["prompt_tokens"], r["completion_tokens"]) == (500, 100)
    assert r["cost_usd"] == pytest.approx((500 * 1.0 + 100 * 2.0) / 1e6)
    assert r["price_per_million"]["source"] == "a test price"
    assert "5 requests" in c.usage_line()


def test_images_go_as_base64_data_urls(server, tmp_path, fixtures_dir):
    url = image_data_url(fixtures_dir / "dota" / "P1888.png", max_side=256)
    assert url.startswith("data:image/jpeg;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert im.mode == "RGB" and max(im.size) == 256 and im.size[0] > im.size[1]  # aspect kept
    c = client(server, tmp_path)
    c.complete([user_message("look [fault=ok]", [url])])
    assert server.images_seen == 1


def test_key_from_environment_and_clear_error_without_it(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(LLMConfigError, match=r"set \$OPENAI_API_KEY"):
        LLMClient(LLMSettings())
    LLMClient(LLMSettings(base_url="http://127.0.0.1:9/v1"))  # a local server needs no key
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:9/v1")
    assert LLMClient(LLMSettings()).base_url == "http://localhost:9/v1"


def test_redact():
    assert redact("Incorrect API key provided: sk-proj-abc123XYZ789. See", None) == \
        "Incorrect API key provided: sk-***. See"
    assert "s3cr3t" not in redact("token s3cr3t-value here", "s3cr3t-value")


@pytest.mark.parametrize("reply,score", [("7", 0.7), ("Score: 8/10", 0.8), ("7.5", 0.75), ("12", 1.0), ("-3", 0.0),
                                         ("I'd give it a 9.", 0.9), ("no number", None), ("", None), (None, None)])
def test_judge_reply_parsing(reply, score):
    assert parse_judge_score(reply) == score


def test_the_judge_is_asked_as_the_released_grpo_code_asks(fixtures_dir):
    judge = OpenAIJudge(LLMClient(LLMSettings(image_max_side=None, base_url="http://localhost:9/v1")))
    system, user = judge.messages("What is here?", "A church.", fixtures_dir / "real_images" / "church_010.jpg")
    assert system["content"].startswith(" You are a teacher who is checking the answer of a student model.")
    assert "grade it between 0-10, based on its explanatory abilities" in system["content"]
    assert [c["type"] for c in user["content"]] == ["text", "image_url"]  # the question first, then the image
    assert user["content"][0]["text"] == " <question> What is here? </question> <answer> A church. </answer> "


def test_the_released_judge_section_makes_the_released_request():
    """The paper profile's judge_released is the released GRPO code's request: its model, temperature and reply
    limit, and the openai client's own timeout and retry defaults (it built `OpenAI(api_key=...)` and nothing else)."""
    import openai
    from openai._constants import INITIAL_RETRY_DELAY, MAX_RETRY_DELAY

    from tinyrs.llm import llm_section

    s = LLMSettings.from_config(llm_section("paper", "judge_released"))
    assert (s.model, s.temperature, s.max_tokens) == ("gpt-4.1-mini-2025-04-14", 0.2, 32768)
    assert s.max_retries == openai.DEFAULT_MAX_RETRIES and s.timeout == openai.DEFAULT_TIMEOUT.read
    assert (s.backoff, s.backoff_max) == (INITIAL_RETRY_DELAY, MAX_RETRY_DELAY) and s.image_max_side is None


def test_openai_judge_scores_and_records_failures(tmp_path, fixtures_dir, capsys):
    image = fixtures_dir / "real_images" / "church_010.jpg"
    with FaultServer(judge_reply="Score: 8") as s:
        judge = OpenAIJudge(client(s, tmp_path, temperature=0.2))
        assert judge.score("What is this?", "A church with a parking lot.", image) == 0.8
        # unparsable every time, then a failed call: None both times, recorded, never 0 and never the 0.8 above
        assert judge.score("Describe it [fault=notags]", "text", image) is None
        assert judge.score("Describe it [fault=500]", "text", image) is None
        assert len(judge.failures) == 2 and judge.client.usage.counts["failures"] == 2
        assert judge.score("Next one", "another answer", image) == 0.8
        requests = judge.client.usage.counts["requests"]
        assert judge.score("What is this?", "A church.", tmp_path / "gone.jpg") is None  # an image it cannot see
        assert judge.client.usage.counts["requests"] == requests and "image not found" in judge.failures[-1]["error"]
        down = OpenAIJudge(client(s, tmp_path / "down", temperature=0.2))
        assert down.score("Describe it [fault=500]", "text", image) is None
    from tinyrs.cli import _print_judge_usage  # what tinyrs eval / rescore print after the table
    from tinyrs.llm import LLMConfigError

    _print_judge_usage(judge, tmp_path)
    assert "failed 1x: InternalServerError" in capsys.readouterr().out
    with pytest.raises(LLMConfigError, match="every one of the judge's 1 requests failed .*tinyrs rescore"):
        _print_judge_usage(down, tmp_path)  # a judge that graded nothing is an error (exit 2), not a quiet success
    with FaultServer(judge_reply="Score: 8") as s:  # the two failures told apart, for the released handling
        judge = OpenAIJudge(client(s, tmp_path, temperature=0.2))
        assert judge.judgement("Describe it [fault=notags]", "text", image) == (None, UNPARSABLE)  # released: 0
        calls = judge.client.usage.counts["api_calls"]
        assert judge.judgement("Other [fault=notags]", "text", image, retry_unparsable=False) == (None, UNPARSABLE)
        assert judge.client.usage.counts["api_calls"] == calls + 1  # one call, as the released code makes
        assert judge.judgement("Describe it [fault=500]", "text", image)[1] not in (None, UNPARSABLE)
