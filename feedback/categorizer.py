"""Suggest a category for a comment: Reliability, Usability, Functionality or Other.

Two transparent parts, both in this file and its data folder, no model download:

1. a lexicon of words and phrases per category (LEXICON below), each hit adding LEXICON_WEIGHT
   to that category's score;
2. a multinomial Naive Bayes over words and word pairs, trained at first use on
   feedback/categorizer_data/train.jsonl (Laplace smoothing, uniform priors).

The suggestion is the category with the highest score (the Naive Bayes log posterior plus the
lexicon bonus). Staff correct it (Response.category); the labelled sample that measures the
agreement lives in tests/feedback/data/ and is never read here. docs/feedback.md gives the figure
and where it goes wrong.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .models import Category

TRAINING_FILE = Path(__file__).resolve().parent / "categorizer_data" / "train.jsonl"
LEXICON_WEIGHT = 2.0

# Written from the definitions (Reliability: performance, up-time, quality, security;
# Usability: complexity, ease of use, discoverability; Functionality: missing features).
# A phrase matches on word boundaries; a trailing "*" matches any ending ("crash*").
LEXICON: dict[str, list[str]] = {
    Category.RELIABILITY: [
        "slow*", "sluggish", "lag*", "latency", "performance", "speed", "fast", "faster", "quick*",
        "timeout*", "time out", "times out", "crash*", "freez*", "hang*", "outage*", "down",
        "downtime", "offline", "uptime", "unavailable", "reliab*", "unreliable", "stable",
        "unstable", "flaky", "bug*", "buggy", "glitch*", "error*", "broke*", "break*", "fail*",
        "lost", "loses", "data loss", "corrupt*", "security", "secure", "breach", "encrypt*",
        "leak*", "vulnerab*", "incident*", "memory", "loading", "load", "sync*", "regression*",
        "500", "502", "503", "logged out", "logging me out", "status page", "defect*",
    ],
    Category.USABILITY: [
        "confus*", "intuitive", "unintuitive", "complicated", "complex", "complexity",
        "easy to use", "ease of use", "easy", "easier", "simple", "simpler", "straightforward",
        "user friendly", "hard to find", "find", "can't find", "discover*", "hidden", "buried",
        "learning curve", "learn*", "navigat*", "menu*", "interface", "ui", "ux", "layout",
        "clutter*", "clunky", "awkward", "fiddly", "finicky", "clicks", "overwhelm*",
        "design", "redesign", "tutorial", "onboarding", "figure out", "baffl*", "maze",
        "labyrinth", "terminology", "jargon", "readable", "hard to read", "accessib*",
        "icons", "buttons", "lost", "puzzle", "intimidating", "polished", "clean",
    ],
    Category.FUNCTIONALITY: [
        "missing", "miss", "lack*", "wish", "would love", "would like", "we'd like", "i'd love",
        "want", "please add", "add", "feature*", "feature request", "integration*", "integrate",
        "support for", "no way to", "there is no", "there's no", "can't", "cannot", "need*",
        "export*", "import", "api", "sso", "saml", "template*", "gantt", "offline mode",
        "dark mode", "dark theme", "recurring", "time tracking", "custom fields",
        "automation*", "webhook*", "version history", "roadmap", "subtask*", "would be great",
        "would be nice", "would help", "allow", "ability to", "let us", "build",
    ],
}

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP = frozenset(
    "a an the and or but of to in on at for with is are was were be been it its it's this that "
    "i we you our my me us they them so as by from have has had do does did just very really "
    "all any some".split()
)


def _tokens(text: str) -> list[str]:
    words = [word for word in _WORD.findall(text.lower()) if word not in _STOP]
    return words + [f"{first}_{second}" for first, second in zip(words, words[1:], strict=False)]


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    if phrase.endswith("*"):
        return re.compile(rf"\b{re.escape(phrase[:-1])}[a-z']*")
    return re.compile(rf"\b{re.escape(phrase)}\b")


_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    category: [_phrase_pattern(phrase) for phrase in phrases] for category, phrases in LEXICON.items()
}


@dataclass(frozen=True)
class Model:
    categories: tuple[str, ...]
    log_likelihood: dict[str, dict[str, float]]
    log_unseen: dict[str, float]
    vocabulary: frozenset[str]


def training_examples() -> list[tuple[str, str]]:
    examples = []
    with TRAINING_FILE.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                row = json.loads(line)
                examples.append((row["text"], row["category"]))
    return examples


def train(examples: list[tuple[str, str]], *, alpha: float = 1.0) -> Model:
    """Multinomial Naive Bayes with Laplace smoothing; priors are uniform (the training set's
    class sizes say nothing about how often customers complain about each thing)."""
    categories = tuple(Category.values)
    counts: dict[str, Counter[str]] = {category: Counter() for category in categories}
    for text, category in examples:
        counts[category].update(_tokens(text))
    vocabulary = set().union(*counts.values())
    log_likelihood: dict[str, dict[str, float]] = {}
    log_unseen: dict[str, float] = {}
    for category in categories:
        total = sum(counts[category].values()) + alpha * (len(vocabulary) + 1)
        log_likelihood[category] = {
            token: math.log((count + alpha) / total) for token, count in counts[category].items()
        }
        log_unseen[category] = math.log(alpha / total)
    return Model(
        categories=categories,
        log_likelihood=log_likelihood,
        log_unseen=log_unseen,
        vocabulary=frozenset(vocabulary),
    )


@lru_cache(maxsize=1)
def model() -> Model:
    return train(training_examples())


def lexicon_hits(text: str) -> dict[str, int]:
    lowered = text.lower()
    return {
        category: sum(1 for pattern in patterns if pattern.search(lowered))
        for category, patterns in _PATTERNS.items()
    }


def scores(text: str, *, trained: Model | None = None) -> dict[str, float]:
    """Each category's score: Naive Bayes log likelihood of the tokens plus the lexicon bonus."""
    trained = trained or model()
    # Words the training set never used say nothing about any category; counting them would
    # favour the category with the fewest training words (the largest smoothed share).
    tokens = [token for token in _tokens(text) if token in trained.vocabulary]
    hits = lexicon_hits(text)
    result = {}
    for category in trained.categories:
        likelihood = trained.log_likelihood[category]
        unseen = trained.log_unseen[category]
        result[category] = sum(likelihood.get(token, unseen) for token in tokens) + LEXICON_WEIGHT * hits.get(
            category, 0
        )
    return result


def categorize(text: str, *, trained: Model | None = None) -> str:
    """The suggested category of a comment; "" for an empty comment."""
    if not text.strip():
        return ""
    trained = trained or model()
    known = any(token in trained.vocabulary for token in _tokens(text))
    if not known and not any(lexicon_hits(text).values()):
        return Category.OTHER  # nothing it has seen before: no evidence for any category
    ranked = scores(text, trained=trained)
    return max(trained.categories, key=lambda category: ranked[category])


@dataclass
class Agreement:
    total: int
    agreed: int
    per_category: dict[str, tuple[int, int]]  # staff's category -> (agreed, total)
    confusion: Counter[tuple[str, str]]  # (staff, suggested) -> count

    @property
    def rate(self) -> float:
        return self.agreed / self.total if self.total else 0.0


def agreement(labelled: list[tuple[str, str]]) -> Agreement:
    """How often the suggestion equals the staff's category on a labelled sample."""
    per_category: dict[str, list[int]] = {category: [0, 0] for category in Category.values}
    confusion: Counter[tuple[str, str]] = Counter()
    agreed = 0
    for text, staff_category in labelled:
        suggested = categorize(text)
        confusion[(staff_category, suggested)] += 1
        per_category[staff_category][1] += 1
        if suggested == staff_category:
            agreed += 1
            per_category[staff_category][0] += 1
    return Agreement(
        total=len(labelled),
        agreed=agreed,
        per_category={category: (pair[0], pair[1]) for category, pair in per_category.items()},
        confusion=confusion,
    )


def agreement_text(result: Agreement) -> str:
    lines = [f"Categorizer agreement with staff: {result.agreed}/{result.total} = {result.rate:.1%}"]
    for category, (agreed, total) in result.per_category.items():
        rate = agreed / total if total else 0.0
        lines.append(f"  {category:<14} {agreed:>3}/{total:<3} = {rate:.1%}")
    mistakes = sorted(
        ((count, staff, suggested) for (staff, suggested), count in result.confusion.items() if staff != suggested),
        reverse=True,
    )
    if mistakes:
        lines.append("  most frequent disagreements (staff -> suggested): " + ", ".join(
            f"{staff}->{suggested} x{count}" for count, staff, suggested in mistakes[:5]
        ))
    return "\n".join(lines)
