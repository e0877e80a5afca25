"""coursekit.hub: push_to_hub only with a token, and the token is never printed."""

import pytest

from coursekit import hub

SECRET = "hf_ThisIsNotARealTokenButMustNeverBePrinted123"


class FakeModel:
    def __init__(self, fail=False):
        self.calls, self.fail = [], fail

    def push_to_hub(self, repo_id, token=None, private=True):
        self.calls.append((repo_id, token))
        if self.fail:
            raise RuntimeError(f"401 Unauthorized for token {token}")


def test_push_skipped_without_token(monkeypatch, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    model = FakeModel()
    assert hub.push_adapter(model, "me/adapter") is False
    out = capsys.readouterr().out
    assert model.calls == []
    assert out.count("\n") == 1 and "skipped" in out and "HF_TOKEN" in out


def test_push_with_token_never_prints_it(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    model = FakeModel()
    assert hub.push_adapter(model, "me/adapter") is True
    captured = capsys.readouterr()
    assert model.calls == [("me/adapter", SECRET)]
    assert SECRET not in captured.out + captured.err and "me/adapter" in captured.out


def test_push_failure_does_not_echo_the_token(monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert hub.push_adapter(FakeModel(fail=True), "me/adapter") is False
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err and "failed" in captured.out


def test_blank_token_counts_as_unset(capsys):
    assert hub.push_adapter(FakeModel(), "me/a", env={"HF_TOKEN": "  "}) is False
    assert "skipped" in capsys.readouterr().out


# ---------------------------------------------------------------- a failed push says why, never the token
def _http_error(status, server_message=None):
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    response = httpx2.Response(status, request=request)
    return HfHubHTTPError(f"{status} Client Error for token {SECRET}", response=response, server_message=server_message)


def _offline():
    from huggingface_hub.errors import OfflineModeIsEnabled

    return OfflineModeIsEnabled(f"offline; token {SECRET}")


def _no_route():
    import httpx2

    return httpx2.ConnectError(f"[Errno 101] Network is unreachable ({SECRET})")


@pytest.mark.parametrize("make_error, reason", [
    (lambda: _http_error(401), ("the Hub rejected HF_TOKEN (401): it is wrong or expired; make a new one at "
                                "https://huggingface.co/settings/tokens")),
    (lambda: _http_error(403, f"You don't have the rights to create a model under the namespace \"someone\" "
                              f"({SECRET})"),
     "HF_TOKEN may not write to 'someone' (403): use a token with write access"),
    (lambda: _http_error(404), "the namespace 'someone' was not found (404): push to your own username"),
    (_no_route, "the Hub could not be reached (ConnectError): check the internet connection"),
    (_offline, "offline mode is on (HF_HUB_OFFLINE): unset HF_HUB_OFFLINE"),
])
def test_a_failed_push_names_the_reason_and_never_the_token(monkeypatch, capsys, make_error, reason):
    class Failing(FakeModel):
        def push_to_hub(self, repo_id, token=None, private=True):
            raise make_error()

    monkeypatch.setenv("HF_TOKEN", SECRET)
    assert hub.push_adapter(Failing(), "someone/adapter") is False
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert SECRET not in out, f"the token leaked: {out!r}"
    assert out.count("\n") == 1 and out.startswith("push_to_hub to someone/adapter failed: ") and reason in out, out


def test_the_hub_s_own_words_come_through_with_the_token_hidden():
    reason = hub.push_failure(_http_error(403, f"no rights under \"someone\" for {SECRET}"), "someone/a", SECRET)
    assert reason.endswith('(the Hub said: no rights under "someone" for hf_***)'), reason
