"""The Hugging Face hub, reachable or not: asked once per process, before the first lookup.

Without a network, huggingface_hub retries every lookup (about 23 s and 22 warning lines for a
failing DNS, minutes against an endpoint that accepts connections and never answers) before
reedit can say what to do. :func:`offline` is called right before a hub lookup (a null
``dataset.path``, a model path that is a hub id): unless ``HF_HUB_OFFLINE`` or
``TRANSFORMERS_OFFLINE`` is set, it sends one short request to the configured endpoint
(``HF_ENDPOINT``, default https://huggingface.co); when nothing answers within
:data:`PROBE_TIMEOUT_S`, the process runs offline from the local cache (``HF_HUB_OFFLINE=1``, for
huggingface_hub and for the processes it starts), so a missing file is reported at once.

Any answer, even an HTTP error, counts as reachable: the lookup itself then reports what is wrong.
Set ``HF_HUB_OFFLINE=0`` to skip the check and always go online.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 2.5
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "ON", "YES", "TRUE"}  # huggingface_hub's reading of a boolean variable

_lock = threading.Lock()
_no_answer: str | None = None  # why the probe went offline; "" once the hub answered


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _set_by_environment() -> str | None:
    """``NAME=value`` of the first offline variable that is set (to anything), else None."""
    for name in OFFLINE_VARIABLES:
        value = os.environ.get(name)
        if value is not None and value.strip():
            return f"{name}={value}"
    return None


def _environment_says_offline() -> bool:
    return any(os.environ.get(n, "").strip().upper() in _TRUE for n in OFFLINE_VARIABLES)


def offline() -> bool:
    """Whether hub lookups must stay in the local cache. Call it right before a lookup: the first
    call in a process without ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` probes the endpoint
    (once; later calls reuse the answer) and goes offline when it does not answer."""
    global _no_answer
    if _set_by_environment() is not None:
        return _environment_says_offline()
    with _lock:
        if _no_answer is None:
            url = endpoint()
            _no_answer = _probe(url, PROBE_TIMEOUT_S)
            if _no_answer:
                log.warning(
                    "the Hugging Face hub at %s did not answer (%s): running offline from the "
                    "local cache (set HF_HUB_OFFLINE=1 to skip this check)",
                    url,
                    _no_answer,
                )
                go_offline()
    return _environment_says_offline()


def offline_reason() -> str:
    """Why lookups are offline, for an error message ("" when they are not)."""
    if _no_answer:
        return f"the hub at {endpoint()} did not answer: {_no_answer}"
    if _environment_says_offline():
        return f"{_set_by_environment()} is set"
    return ""


def go_offline() -> None:
    """Offline for this process and its children: huggingface_hub reads ``HF_HUB_OFFLINE`` at
    import, so a copy already imported is told too."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def _probe(url: str, timeout: float) -> str:
    """Empty if ``url`` answers within ``timeout`` seconds (name resolution included), else why
    not."""
    found: list[str] = []
    worker = threading.Thread(
        target=lambda: found.append(_ask(url, timeout)), name="reedit-hub-probe", daemon=True
    )
    worker.start()
    worker.join(timeout)
    return found[0] if found else f"no answer within {timeout:g} s"


def _ask(url: str, timeout: float) -> str:
    import ssl
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url + "/", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):  # proxies from the environment
            return ""
    except urllib.error.HTTPError:  # a server answered
        return ""
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):  # it answered; the lookup will say more
            return ""
        if isinstance(exc.reason, TimeoutError):
            return f"no answer within {timeout:g} s"
        return str(exc.reason)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except (OSError, ValueError) as exc:  # a closed connection, a malformed HF_ENDPOINT, ...
        return f"{type(exc).__name__}: {exc}"
