"""Where a model server lives, and the one message a user gets when it is not there."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from ..exchange import BackendError, BackendUnreachable, ModelUnavailable


def normalise_base_url(url: str) -> str:
    """The server root as users know it: `localhost:1234/v1/` -> `http://localhost:1234`.

    Users copy the OpenAI base URL (with `/v1`) as often as the server root; both are accepted.
    """
    root = url.strip().rstrip("/")
    if not root:
        raise BackendError("empty base URL: give the server root, e.g. http://localhost:1234")
    if "://" not in root:
        root = "http://" + root
    if root.endswith("/v1"):
        root = root[: -len("/v1")]
    return root.rstrip("/")


@dataclass(frozen=True)
class Server:
    label: str  # what users call it: "LM Studio", "Ollama"
    root: str  # normalised base URL, no trailing /v1
    start_hint: str  # how to start it, one short imperative sentence

    @property
    def openai_url(self) -> str:
        return self.root + "/v1"

    @property
    def local(self) -> bool:
        """Whether it listens on this machine's loopback: then the paths it names are ours."""
        return (urlsplit(self.root).hostname or "") in ("localhost", "127.0.0.1", "::1")

    def unreachable(self, reason: str) -> BackendUnreachable:
        return BackendUnreachable(
            f"cannot reach {self.label} at {self.root} ({reason}); {self.start_hint}"
        )

    def error(self, what: str) -> BackendError:
        return BackendError(f"{self.label} at {self.root}: {what}")

    def missing(self, what: str) -> ModelUnavailable:
        """The server lacks the model: an error no retry can cure."""
        return ModelUnavailable(f"{self.label} at {self.root}: {what}")
