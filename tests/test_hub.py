"""coursekit.hub: push_to_hub only with a token, and the token is never printed."""

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
