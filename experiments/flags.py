"""GrowthBook feature flags, evaluated in this process. The only module that imports growthbook.

The features are GrowthBook's own JSON: the `features` object of an SDK payload, as GrowthBook
exports it, with its rules (force, rollout, experiment) and targeting conditions. They come from
`settings.GROWTHBOOK_FEATURES` (a dict) or else from the JSON file named by
`settings.GROWTHBOOK_FEATURES_FILE` (or the environment variable of that name), re-read when the
file changes; features staff edit in the admin (experiments.models.Feature) are added on top,
re-read at most every GROWTHBOOK_ADMIN_FEATURES_SECONDS. Experiments staff define in the admin
run through `experiment_run` (experiments/services.py: experiment_assign). Evaluation is offline: nothing is fetched from GrowthBook's servers, so a flag can
never slow a request down or fail it. With no features configured every flag is unknown and
callers use their defaults.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from growthbook import Experiment as GrowthBookExperiment
from growthbook import GrowthBook

logger = logging.getLogger(__name__)

_file_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_admin_cache: list[Any] = [0.0, {}]  # [read at (monotonic), features]


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


def admin_features() -> dict[str, Any]:
    """Enabled features from the admin, cached in this process for a few seconds."""
    ttl = float(getattr(settings, "GROWTHBOOK_ADMIN_FEATURES_SECONDS", 10.0))
    now = time.monotonic()
    if ttl > 0 and now - _admin_cache[0] < ttl:
        return _admin_cache[1]
    from .models import Feature

    try:
        loaded = {key: definition for key, definition in Feature.objects.filter(enabled=True).values_list("key", "definition")}
    except DatabaseError as error:
        logger.warning("admin features unreadable, flags fall back to the file: %s", error)
        loaded = {}
    _admin_cache[0], _admin_cache[1] = now, loaded
    return loaded


def admin_features_forget() -> None:
    """Re-read the admin features at the next evaluation (after staff saved one)."""
    _admin_cache[0] = 0.0


def features() -> dict[str, Any]:
    """The feature definitions in force: the configured ones, with the admin's on top."""
    admin = admin_features()
    configured = _configured_features()
    return {**configured, **admin} if admin else configured


def _configured_features() -> dict[str, Any]:
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


@dataclass(frozen=True)
class ExperimentDefinition:
    """An experiment as GrowthBook runs it: weights per variation, in position order."""

    key: str
    weights: list[float]
    hash_attribute: str = "id"
    coverage: float = 1.0
    condition: dict[str, Any] | None = None


@dataclass(frozen=True)
class ExperimentResult:
    """Which variation (its position) a unit gets; `in_experiment` False means not at all."""

    in_experiment: bool
    variation: int
    hash_value: str


def experiment_run(definition: ExperimentDefinition, *, attributes: dict[str, Any]) -> ExperimentResult:
    """Assign a unit with GrowthBook's own hashing (version 2, seeded by the key): the same
    attributes give the same variation in every process, with no network call.

    A unit without the hash attribute, outside the coverage or failing the condition is not in
    the experiment. Any GrowthBook failure counts as "not in the experiment", never an error.
    """
    total = sum(definition.weights)
    if total <= 0 or not definition.weights:
        return ExperimentResult(in_experiment=False, variation=0, hash_value="")
    try:
        result = GrowthBook(attributes=attributes).run(
            GrowthBookExperiment(
                key=definition.key,
                variations=list(range(len(definition.weights))),
                weights=[weight / total for weight in definition.weights],
                coverage=definition.coverage,
                condition=definition.condition or None,
                hashAttribute=definition.hash_attribute,
                hashVersion=2,
                seed=definition.key,
            )
        )
    except Exception as error:  # noqa: BLE001 - a broken definition must not fail the caller
        logger.warning("GrowthBook could not run experiment %s: %s", definition.key, error)
        return ExperimentResult(in_experiment=False, variation=0, hash_value="")
    return ExperimentResult(
        in_experiment=bool(result.inExperiment and result.hashUsed),
        variation=int(result.variationId),
        hash_value=str(result.hashValue or ""),
    )
