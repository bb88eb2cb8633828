"""Hugging Face Hub revisions: a branch, tag or commit in params resolved once to the commit it
points to now. Every load of a stage then passes the same revision (transformers and datasets read
that exact commit), and the commit goes into the data card, the features meta and the model
summary, so a result can be traced to the hub state that produced it."""

from __future__ import annotations

import os

from ..errors import UserError


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")


def resolve(name: str, revision: str | None, repo_type: str) -> tuple[str, str]:
    """(the revision every load passes, the commit it resolved to) of hub repo ``name``
    (``repo_type``: model or dataset). Offline, the commit a cached copy recorded is used."""
    from huggingface_hub import resolve_revision

    try:
        resolved = resolve_revision(
            name, repo_type=repo_type, revision=revision, local_files_only=offline()
        )
    except Exception as e:
        why = (
            "HF_HUB_OFFLINE is set and no cached copy has it"
            if offline()
            else "the Hub did not provide it (offline, or a typo?)"
        )
        raise UserError(
            f"cannot resolve revision {revision or 'main'} of Hugging Face {repo_type} {name!r}: "
            f"{why} ({type(e).__name__}); check the name and the revision, or use the offline "
            "default"
        ) from None
    return resolved, str(getattr(resolved, "resolved", resolved))
