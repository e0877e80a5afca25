"""The Hugging Face Hub: is it reachable, and a clear error when a model or dataset is not.

Every Hub download in coursekit goes through here, so an offline machine fails
at once with one line naming the fix, instead of after a minute of retries::

    >>> import os
    >>> os.environ["HF_HUB_OFFLINE"] = "1"; hub_status.cache_clear()
    >>> hub_status()
    'offline mode is on (HF_HUB_OFFLINE)'

Gated models (Llama) fail before any download when no token is set
(``check_access``), and ``push_adapter`` pushes only with ``HF_TOKEN`` set,
never printing it.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
GATED_PREFIXES = ("meta-llama/",)


class AssetError(RuntimeError):
    """An asset is missing or cannot be fetched; the message says how to fix it."""


def offline_env() -> bool:
    """Whether the environment marks this process offline (``HF_HUB_OFFLINE`` and kin)."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


OFFLINE_HINT = ("Connect to the internet, or use the offline smoke profile: run `%env COURSEKIT_PROFILE=smoke` in a "
                "cell (`export COURSEKIT_PROFILE=smoke` in a shell), then rerun from the profile cell.")


@functools.lru_cache(maxsize=1)
def hub_status() -> str:
    """``""`` when the Hugging Face Hub answers, else why not. Checked once per process, in 3 s at most."""
    import requests
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or offline_env():
        return "offline mode is on (HF_HUB_OFFLINE)"
    try:
        requests.head(constants.ENDPOINT, timeout=3)  # any HTTP answer, even an error status, means reachable
    except requests.RequestException as err:
        return f"{constants.ENDPOINT} did not answer ({type(err).__name__})"
    return ""


def use_hub() -> None:
    """Before a Hub download: if the Hub is unreachable, switch to offline mode once, saying so in one line.

    Offline, models and datasets already in the local cache still load, and anything
    else fails at once instead of after a minute of retries per file.
    """
    from huggingface_hub import constants

    status = hub_status()
    if not status or constants.HF_HUB_OFFLINE:
        return
    print(f"The Hugging Face Hub is unreachable: {status}. Using only what is in the local cache.")
    os.environ["HF_HUB_OFFLINE"] = "1"  # for libraries imported later and for subprocesses
    constants.HF_HUB_OFFLINE = True  # huggingface_hub and transformers read it at each call
    if "datasets" in sys.modules:
        sys.modules["datasets"].config.HF_HUB_OFFLINE = True


def hub_error(name: str, err: Exception) -> AssetError:
    """The one-line ``AssetError`` for a Hub model or dataset that did not load, naming the fix."""
    text = str(err)
    if "gated" in text.lower() or "401" in text or "403" in text:
        hint = "It is gated: accept its licence on the Hub and set HF_TOKEN (or run `huggingface-cli login`)."
    else:
        status = hub_status()
        where = f"The Hugging Face Hub is unreachable ({status}) and it is not in the local cache." if status else (
            "It is neither a local folder nor on the Hugging Face Hub: check the name.")
        hint = f"{where} {OFFLINE_HINT}" if status else where
    detail = " ".join(text[:300].split())  # one line: a CLI prints it as `error: ...`
    return AssetError(f"Could not load '{name}'. {hint} (underlying error: {type(err).__name__}: {detail})")


def load_hub_dataset(path: str, *args: Any, **kwargs: Any) -> Any:
    """``datasets.load_dataset`` for a Hub dataset, with the unreachable-Hub check and a clear ``AssetError``."""
    from datasets import load_dataset

    use_hub()
    try:
        return load_dataset(path, *args, **kwargs)
    except (ConnectionError, OSError, ValueError) as err:  # datasets raises all three for "not reachable/cached"
        raise hub_error(path, err) from None


def _hf_token() -> str | None:
    from huggingface_hub import get_token

    return get_token()


def check_access(name: str, rehearsal: bool = False) -> bool:
    """A gated Hub model without a token fails here, before any download, naming HF_TOKEN.

    In a rehearsal (``Profile.rehearsal``) the stand-in Hub serves it without a token: the return value is then
    True (the check was waived), so the caller can say so; otherwise False.
    """
    if name.startswith(GATED_PREFIXES) and not _hf_token():
        if rehearsal:
            return True
        raise AssetError(f"'{name}' is gated: accept its licence on the Hub, then set HF_TOKEN "
                         "(or run `huggingface-cli login`). No token was found.")
    return False


TOKENS_URL = "https://huggingface.co/settings/tokens"


def _hidden(text: str, token: str) -> str:
    """``text`` on one line with the token, and anything shaped like a Hugging Face token, replaced by ``hf_***``."""
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", " ".join(text.replace(token, "hf_***").split()))


def _status_reason(status: int, repo_id: str) -> str:
    namespace = repo_id.split("/")[0] if "/" in repo_id else "your account"
    if status == 401:
        return (f"the Hub rejected HF_TOKEN (401): it is wrong or expired; make a new one at {TOKENS_URL} and "
                "set HF_TOKEN")
    if status == 403:
        return (f"HF_TOKEN may not write to '{namespace}' (403): use a token with write access ({TOKENS_URL}), and "
                "push to your own username or an organisation you can write to")
    if status == 404:
        return (f"the namespace '{namespace}' was not found (404): push to your own username "
                "(`hf auth whoami` prints it) or an organisation you belong to")
    if status == 429 or status >= 500:
        return f"the Hub is busy or down ({status}): try again in a few minutes"
    return f"the Hub answered {status}"


def push_failure(err: Exception, repo_id: str, token: str = "") -> str:
    """Why a push failed, as a student can act on it (token, namespace, permission, offline); never the token.

    >>> push_failure(ConnectionError("no route to host"), "me/adapter")
    'the Hub could not be reached (ConnectionError): check the internet connection, then push again'
    """
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    if isinstance(err, OfflineModeIsEnabled):
        return "offline mode is on (HF_HUB_OFFLINE): unset HF_HUB_OFFLINE and connect, then push again"
    if isinstance(err, HFValidationError):
        return f"'{repo_id}' is not a valid repo id: use 'your-username/adapter-name'"
    if isinstance(err, HfHubHTTPError) and getattr(err, "response", None) is not None:
        reason = _status_reason(err.response.status_code, repo_id)
        server = _hidden(err.server_message or "", token)[:200]
        return f"{reason} (the Hub said: {server})" if server else reason
    if isinstance(err, (ConnectionError, TimeoutError)) or _is_transport_error(err):
        return f"the Hub could not be reached ({type(err).__name__}): check the internet connection, then push again"
    first = _hidden(str(err), token)[:200]
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _is_transport_error(err: Exception) -> bool:
    """A network failure of the Hub client's HTTP library (httpx2) or of requests."""
    kinds: list[type] = []
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "ConnectionError")):
        mod = sys.modules.get(module)
        if mod is not None and isinstance(getattr(mod, name, None), type):
            kinds.append(getattr(mod, name))
    return isinstance(err, tuple(kinds))


def push_adapter(model: Any, repo_id: str, env: Mapping[str, str] | None = None,
                 print_fn: Callable[[str], Any] = print, private: bool = True) -> bool:
    """``model.push_to_hub(repo_id)`` when ``HF_TOKEN`` is set, else one line saying it was skipped.

    The token goes to the Hub client only; no message contains it. A failure says why, as ``push_failure`` reads
    it: a wrong or expired token, a namespace it may not write to, one that does not exist, or no connection.

    >>> push_adapter(None, "me/price-adapter", env={})     # no HF_TOKEN: nothing is sent
    push_to_hub skipped: HF_TOKEN is not set (would push the adapter to me/price-adapter).
    False
    """
    env = os.environ if env is None else env
    token = env.get("HF_TOKEN", "").strip()
    if not token:
        print_fn(f"push_to_hub skipped: HF_TOKEN is not set (would push the adapter to {repo_id}).")
        return False
    try:
        model.push_to_hub(repo_id, token=token, private=private)
    except Exception as err:  # noqa: BLE001 - report the failure without echoing anything that holds the token
        print_fn(f"push_to_hub to {repo_id} failed: {push_failure(err, repo_id, token)}. HF_TOKEN was set (not shown).")
        return False
    print_fn(f"pushed the adapter to https://huggingface.co/{repo_id} (HF_TOKEN set, not shown).")
    return True
