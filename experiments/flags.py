"""GrowthBook feature flags, evaluated in this process. The only module that imports growthbook.

The features are GrowthBook's own JSON: the `features` object of an SDK payload, as GrowthBook
exports it, with its rules (force, rollout, experiment) and targeting conditions. They come from
`settings.GROWTHBOOK_FEATURES` (a dict) or else from the JSON file named by
`settings.GROWTHBOOK_FEATURES_FILE` (or the environment variable of that name), re-read when the
file changes. Evaluation is offline: nothing is fetched from GrowthBook's servers, so a flag can
never slow a request down or fail it. With no features configured every flag is unknown and
callers use their defaults.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from growthbook import GrowthBook

logger = logging.getLogger(__name__)

_file_cache: dict[str, tuple[float, dict[str, Any]]] = {}


@dataclass(frozen=True)
class FlagValue:
    """A flag's value for one set of attributes, and where it came from.

    `value` is None when the flag is unknown (or GrowthBook could not evaluate it). When an
    experiment chose the value, `experiment_key` and `variation_id` say which arm, so analytics
    events can carry them.
    """

    value: Any
    source: str
    experiment_key: str = ""
    variation_id: int | None = None


def _features_file() -> str:
    return getattr(settings, "GROWTHBOOK_FEATURES_FILE", None) or os.environ.get(
        "GROWTHBOOK_FEATURES_FILE", ""
    )


def features() -> dict[str, Any]:
    """The feature definitions in force."""
    inline = getattr(settings, "GROWTHBOOK_FEATURES", None)
    if inline is not None:
        return inline
    name = _features_file()
    if not name:
        return {}
    path = Path(name)
    try:
        mtime = path.stat().st_mtime
        cached = _file_cache.get(name)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        logger.warning(
            "GrowthBook features file %s unusable, flags fall back to defaults: %s", name, error
        )
        return {}
    loaded = data.get("features", data) if isinstance(data, dict) else {}
    _file_cache[name] = (mtime, loaded)
    return loaded


def flag_evaluate(key: str, *, attributes: dict[str, Any]) -> FlagValue:
    """Evaluate one feature for these attributes (`id` is the unit experiments hash on)."""
    definitions = features()
    if key not in definitions:
        return FlagValue(value=None, source="unknownFeature")
    try:
        result = GrowthBook(attributes=attributes, features={key: definitions[key]}).eval_feature(
            key
        )
    except Exception as error:  # noqa: BLE001 - a broken flag must fall back, never fail the caller
        logger.warning("GrowthBook could not evaluate %s: %s", key, error)
        return FlagValue(value=None, source="error")
    experiment_key = result.experiment.key if result.experiment is not None else ""
    variation_id = (
        result.experimentResult.variationId if result.experimentResult is not None else None
    )
    return FlagValue(
        value=result.value,
        source=result.source,
        experiment_key=experiment_key,
        variation_id=variation_id,
    )
