"""The pattern cache: the registered patterns, parsed once per process, refreshed when the registry changed.

`current()` costs one consistent DynamoDB read per call while nothing changes (the registry's version);
after a registration or deletion it reloads the metadata and fetches only the artifacts it has not parsed
yet, so a warm match function answers from memory. An artifact this code cannot read (written in an older
format by an earlier deployment, or corrupt) is computed again from the pattern's stored example (and a
keyword's text), in memory, and logged; when that fails too (no example was kept, or the example is no longer
accepted) the pattern is logged and left out, so one bad pattern never fails every match. Rebuilding it
(``POST /v1/patterns/{id}/rebuild``, ``harmonic patterns rebuild``) stores an artifact of the current format
under the same id; the cache re-reads an artifact whose ``rebuilt_at`` changed. Templates of format 2 (before
speech embeddings were kept) and 3 (before Whisper's encoder rows were), and keywords stored before the
examples synthesized from their spelling were, are read as they are and matched without them (logged,
counted): an upgrade recomputes nothing at cold start, and a rebuild adds them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from aws_lambda_powertools import Logger

from harmonic_service import config
from harmonic_service.dal import registry
from harmonic_service.logic.patterns import Pattern, PatternSet, rebuild_artifact
from harmonic_service.tenancy import ANONYMOUS, Viewer

_lock = threading.Lock()
#: the parsed set, the registry version and table it is of, and each parsed pattern's ``rebuilt_at``
_state: dict[str, object] = {"version": None, "set": PatternSet(), "table": None, "stamps": {}}
stats = {
    "reloads": 0,
    "artifacts_fetched": 0,
    "unreadable": 0,
    "rebuilt": 0,
    "without_embeddings": 0,
    "uncalibrated": 0,
}
logger = Logger(service="harmonic", child=True)


def current() -> PatternSet:
    """The PatternSet of the registry's current version."""
    table = config.get_settings().patterns_table
    version = registry.version()
    with _lock:
        if _state["version"] == version and _state["table"] == table:
            return _state["set"]  # type: ignore[return-value]
        same_table = _state["table"] == table
        pattern_set: PatternSet = _state["set"] if same_table else PatternSet()  # type: ignore[assignment]
        stamps: dict[str, str | None] = _state["stamps"] if same_table else {}  # type: ignore[assignment]
        items = {item["pattern_id"]: item for item in registry.list_all()}
        for parsed in list(pattern_set.names):
            if parsed not in items or stamps.get(parsed) != items[parsed].get("rebuilt_at"):
                pattern_set.remove(parsed)  # deleted, or its artifact was rebuilt: read it again
                stamps.pop(parsed, None)
        for pattern_id, item in items.items():
            if pattern_id not in pattern_set.names:
                stamps[pattern_id] = item.get("rebuilt_at")
                try:
                    data = registry.artifact(pattern_id)
                except KeyError:  # deleted between the scan and now: the next version drops it
                    continue
                stats["artifacts_fetched"] += 1
                owner = item.get("owner") or ANONYMOUS
                try:
                    pattern_set.add(Pattern(pattern_id, item["name"], item["kind"], data, owner))
                except ValueError as error:
                    _add_rebuilt(pattern_set, item, owner, str(error))
                    continue
                _note_without_embeddings(pattern_set, item)
        stats["reloads"] += 1
        _state.update(version=version, set=pattern_set, table=table, stamps=stamps)
        return pattern_set


def _note_without_embeddings(pattern_set: PatternSet, item: dict) -> None:
    """Log a template stored before speech embeddings (format 2) or Whisper's encoder rows (format 3, or
    rows of another encoder depth) were kept, a keyword with a spelling stored before the examples
    synthesized from it were (or where eSpeak NG was not installed), or a keyword stored before its
    examples' encoder rows were (harmonic.whisper_encoder.ROWS): it is
    matched without them (docs/matching.md, "Speech embeddings", "Synthesized examples") until it is
    rebuilt (``POST /v1/patterns/{id}/rebuild``); and one whose synthesized examples were stored before their
    level on background speech was (matched with the fixed neutral point until rebuilt: "Calibrated
    synthesized evidence"). A keyword registered from an example alone has no spelling to synthesize, so it
    is not noted."""
    pattern_id = item["pattern_id"]
    template, keyword = pattern_set.templates.get(pattern_id), pattern_set.keywords.get(pattern_id)
    counter = "without_embeddings"
    if template is not None and template.embedding is None:
        message = "template stored before speech embeddings were kept: matched without them"
    elif template is not None and template.whisper is None:
        message = (
            "template stored before Whisper's encoder rows were kept (or with another depth's): matched "
            "without them"
        )
    elif keyword is not None and keyword.text and not keyword.synthesized:
        message = "keyword stored without examples synthesized from its spelling: matched without them"
    elif keyword is not None and keyword.synthesized and keyword.synthesized_level is None:
        counter = "uncalibrated"
        message = (
            "keyword stored before its synthesized examples were measured on background speech: matched "
            "with the fixed neutral point (logic.patterns.SYNTHESIZED_NEUTRAL)"
        )
    elif keyword is not None and keyword.synthesized and not keyword.synthesized_whisper:
        message = (
            "keyword stored before its synthesized examples' encoder rows were kept: matched without them"
        )
    elif keyword is not None and keyword.embedding is not None and keyword.whisper is None:
        message = "keyword stored before its example's encoder rows were kept: matched without them"
    else:
        return
    stats[counter] += 1
    logger.info(
        f"{message}; rebuild it (POST /v1/patterns/{{id}}/rebuild) to bring it up to date",
        extra={"pattern_id": pattern_id, "pattern_name": item["name"]},
    )


def _add_rebuilt(pattern_set: PatternSet, item: dict, owner: str, unreadable: str) -> None:
    """Add a pattern whose stored artifact cannot be read, computed again from its stored example (and
    text); log why, and leave it out when that fails too."""
    from harmonic import InvalidAudio, phonetic

    pattern_id, name, kind = item["pattern_id"], item["name"], item["kind"]
    context = {"pattern_id": pattern_id, "pattern_name": name, "reason": unreadable}
    limits = config.get_settings().wav_limits
    try:
        if kind == "keyword" and not phonetic.available():
            raise ValueError("this runtime has no PocketSphinx to compute a keyword with")
        example = registry.example(item)
        data = rebuild_artifact(kind, item.get("text"), example, limits)
        pattern_set.add(Pattern(pattern_id, name, kind, data, owner))
    except (KeyError, ValueError, InvalidAudio) as error:  # UnknownWords is a ValueError
        stats["unreadable"] += 1
        logger.warning(
            "pattern left out: its artifact cannot be read, nor computed again from its example; register it "
            "again",
            extra={**context, "rebuild_error": str(error)},
        )
        return
    stats["rebuilt"] += 1
    logger.warning(
        "pattern artifact computed again from its stored example (it cannot be read: older format?); "
        "rebuild it (POST /v1/patterns/{id}/rebuild) to store the current format",
        extra=context,
    )


def selected_count(selectors: Iterable[str] | None, viewer: Viewer | None = None) -> int:
    """How many registered patterns `selectors` (ids or names; None: all) select among those `viewer`
    sees (None: every one), without any artifact.

    What a skip rule needs: one consistent read of the version when the parsed set is current, otherwise
    the metadata alone (a scan of the patterns table; nothing is downloaded or parsed).
    """
    table = config.get_settings().patterns_table
    version = registry.version()
    with _lock:
        if _state["version"] == version and _state["table"] == table:
            return len(_state["set"].selected(selectors, viewer))  # type: ignore[attr-defined]
    items = registry.list_all(viewer)
    if selectors is None:
        return len(items)
    wanted = set(selectors)
    return sum(1 for item in items if item["pattern_id"] in wanted or item["name"] in wanted)


def clear() -> None:
    """Forget the parsed patterns (tests start each case with an empty registry)."""
    with _lock:
        _state.update(version=None, set=PatternSet(), table=None, stamps={})


config.on_clear(clear)
