"""Optional hub enrichment: license, downloads, likes, pipeline tag, gated flag of cached repos.

Online only and never required: ``huggingface_hub``'s ``HfApi.model_info`` is called in worker
threads with a short timeout against ``endpoint`` (settings ``discovery.hub_endpoint``, else
``HF_ENDPOINT``, else huggingface.co). The first connection failure (or ``HF_HUB_OFFLINE``)
ends the round as "offline, showing local metadata"; the caller still succeeds with what is on
disk and what was cached earlier. A repo the hub does not know (local-only, private, gated
without a token) is simply skipped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from vllm_mcp.api.discovery import HubInfo

OFFLINE = "offline, showing local metadata"
DEFAULT_ENDPOINT = "https://huggingface.co"
CONCURRENCY = 4


@dataclass
class HubRound:
    infos: dict[str, HubInfo] = field(default_factory=dict)
    offline: bool = False
    skipped: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def status(self) -> str:
        if self.offline:
            return f"{OFFLINE} ({self.reason})" if self.reason else OFFLINE
        return f"online ({len(self.infos)} updated, {len(self.skipped)} not on the hub)"


def hub_endpoint(configured: str | None, env: Mapping[str, str]) -> str:
    return (configured or env.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def is_offline_env(env: Mapping[str, str]) -> bool:
    return any(
        env.get(k, "").lower() in ("1", "true", "yes", "on")
        for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _license(info: Any) -> str | None:
    card = getattr(info, "card_data", None)
    value = getattr(card, "license", None) if card is not None else None
    if isinstance(value, str):
        return value
    for tag in getattr(info, "tags", None) or []:
        if isinstance(tag, str) and tag.startswith("license:"):
            return tag.removeprefix("license:")
    return None


def to_hub_info(info: Any, fetched_at: float) -> HubInfo:
    modified = getattr(info, "last_modified", None)
    gated = getattr(info, "gated", None)
    return HubInfo(
        license=_license(info),
        downloads=getattr(info, "downloads", None),
        likes=getattr(info, "likes", None),
        pipeline_tag=getattr(info, "pipeline_tag", None),
        gated=gated if isinstance(gated, bool | str) else None,
        library_name=getattr(info, "library_name", None),
        last_modified=modified.isoformat() if modified is not None else None,
        fetched_at=fetched_at,
    )


def _fetch_one(endpoint: str, repo_id: str, timeout: float) -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint).model_info(repo_id, timeout=timeout)


def _is_missing(exc: Exception) -> bool:
    """The hub answered, but not with this repo (unknown, private, gated)."""
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    if isinstance(exc, RepositoryNotFoundError | GatedRepoError):
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(exc, HfHubHTTPError) and status is not None and 400 <= status < 500


async def enrich(
    repo_ids: Sequence[str], *, endpoint: str, timeout: float, env: Mapping[str, str]
) -> HubRound:
    """Ask the hub about ``repo_ids``; stop at the first sign of being offline."""
    result = HubRound()
    if not repo_ids:
        return result
    if is_offline_env(env):
        result.offline, result.reason = True, "HF_HUB_OFFLINE is set"
        return result
    limiter = anyio.CapacityLimiter(CONCURRENCY)

    async def one(repo_id: str) -> None:
        if result.offline:
            return
        try:
            info = await anyio.to_thread.run_sync(_fetch_one, endpoint, repo_id, timeout, limiter=limiter)
        except Exception as exc:  # huggingface_hub raises httpx, OS and its own errors
            if _is_missing(exc):
                result.skipped.append(repo_id)
            else:
                result.offline, result.reason = True, f"{endpoint}: {type(exc).__name__}"
            return
        result.infos[repo_id] = to_hub_info(info, time.time())

    async with anyio.create_task_group() as tg:
        for repo_id in repo_ids:
            tg.start_soon(one, repo_id)
    return result
