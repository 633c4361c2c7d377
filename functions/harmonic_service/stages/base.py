"""What a stage is: one declaration (`Stage`) and the context its `run` and skip rule are handed.

A stage module declares one `Stage`: its name, what it reads (earlier stages' outputs), whether it produces
audio, its skip rule and the reason it reports when it skips, its function's size and queue rules, and
`run(context)`. Nothing else in the service knows what a stage does: the runners loop over the ordered table
(`harmonic_service.stages.STAGES`) and hand each stage a `StageContext`.

Two contexts implement the protocol: in memory for `/v1/analyze` (`logic.chain`), and from S3 plus the
checkpoint for SQS stages and Step Functions tasks (`runner`). A stage cannot tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from harmonic import WavLimits
    from harmonic_service.logic.options import Options
    from harmonic_service.logic.patterns import PatternSet
    from harmonic_service.tenancy import Viewer

# SQS needs the visibility timeout to cover every retry of a batch inside one function invocation.
VISIBILITY_TIMEOUT_FACTOR = 6
# Every stage after ingest works at 16 kHz: the band of speech, and what features and templates assume.
ANALYSIS_SAMPLE_RATE = 16_000
# The reason an optional stage reports when the request's `steps` leave it out.
EXCLUDED_BY_STEPS = "excluded by steps"


@dataclass(frozen=True)
class StageOutput:
    """What a stage produced: audio for the stages after it (or None) and its JSON-safe summary."""

    audio: np.ndarray | None
    summary: dict[str, Any]


class StageContext(Protocol):
    """What a stage sees of its invocation: the request and the outputs of the stages before it."""

    @property
    def options(self) -> Options:
        """The request's validated options."""
        ...

    @property
    def steps(self) -> Sequence[str]:
        """The stages the request runs (required ones included)."""
        ...

    @property
    def limits(self) -> WavLimits | None:
        """The deployment's input limits (duration, sample rate) for decoding the clip."""
        ...

    def clip(self) -> bytes:
        """The submitted WAV file."""
        ...

    def audio(self) -> np.ndarray:
        """The audio this stage works on: the output of the last audio stage before it that ran."""
        ...

    def audio_of(self, stage: str) -> np.ndarray:
        """The audio an earlier audio stage produced (the match stage fingerprints ingest's: the clip before
        the speech enhancer, which takes music out). ValueError when that stage produced none."""
        ...

    def summary(self, stage: str) -> Mapping[str, Any]:
        """The summary of an earlier stage (for a skipped one, its skipped summary)."""
        ...

    def earlier(self) -> Sequence[Stage]:
        """The declarations of the stages before this one, in table order."""
        ...

    def patterns(self) -> PatternSet:
        """The registered patterns, parsed (may download artifacts: only the match stage calls it)."""
        ...

    def pattern_count(self) -> int:
        """How many registered patterns the request selects among those its caller sees: a cheap count
        for skip rules."""
        ...

    def viewer(self) -> Viewer | None:
        """Whose request this is: the patterns it sees are its caller's and the publishers' (None: a
        request of nobody in particular, such as the library's, sees every pattern)."""
        ...


Run = Callable[[StageContext], StageOutput]
SkipRule = Callable[[StageContext], "str | None"]


def _reason_only(reason: str) -> dict[str, Any]:
    return {"reason": reason}


@dataclass(frozen=True)
class Stage:
    """One harmonic step, declared once (see the module docstring).

    name: the stage's name in envelopes, checkpoints, queues, functions, states and the API.
    description: one line of what it does (state comments, function descriptions, docs).
    run: the work; raises InvalidAudio or PermanentStageError for input it can never process.
    reads: the earlier stages whose outputs it reads; `ALL_EARLIER` for every one of them. This is the
        dependency graph: a stage may run once every stage it reads is done (succeeded or skipped).
    reads_clip / reads_audio: whether it reads the submitted clip / the audio of the last audio stage.
    produces_audio: whether its output audio is what the following stages work on.
    result_key: its section of the result (None: not part of it); `to_result` shapes that section.
    skip: its skip rule (None: required, always runs); returns the reason it skips, or None to run.
    skip_when: the skip rule in words (documentation and the state machine's Choice comments).
    skipped_summary: its summary (and result section) when it did not run, from the reason.
    uses_patterns: its run reads the pattern registry (and so does its skip rule: a cheap count).
    timeout_s, memory_mb: its function's size; batch_size, max_concurrency, max_receive_count: its queue's
        event source and dead-letter rules.
    """

    name: str
    description: str
    run: Run
    reads: tuple[str, ...] = ()
    reads_clip: bool = False
    reads_audio: bool = False
    produces_audio: bool = False
    result_key: str | None = None
    to_result: Callable[[Mapping[str, Any]], Any] = dict
    skip: SkipRule | None = None
    skip_when: str = ""
    skipped_summary: Callable[[str], dict[str, Any]] = _reason_only
    uses_patterns: bool = False
    timeout_s: int = 60
    memory_mb: int = 1024
    batch_size: int = 1
    max_concurrency: int = 10
    max_receive_count: int = 3

    @property
    def optional(self) -> bool:
        """Whether the stage may be skipped (by the request's `steps`, or by its own rule)."""
        return self.skip is not None

    @property
    def queue_visibility_timeout_s(self) -> int:
        """SQS visibility timeout of its queue: VISIBILITY_TIMEOUT_FACTOR × its function timeout."""
        return self.timeout_s * VISIBILITY_TIMEOUT_FACTOR

    @property
    def title(self) -> str:
        """The name in TitleCase, for construct ids, state names and ASL placeholders (ingest → Ingest)."""
        return self.name.replace("_", " ").title().replace(" ", "")


# `reads=ALL_EARLIER`: the stage reads the output of every stage before it (respond).
ALL_EARLIER: tuple[str, ...] = ("*",)


def skip_reason(stage: Stage, context: StageContext) -> str | None:
    """Why `stage` should be skipped for this invocation, or None to run it.

    Required stages always run; an optional one is skipped when the request's `steps` leave it out, or when
    its own rule says so.
    """
    if stage.skip is None:
        return None
    if stage.name not in context.steps:
        return EXCLUDED_BY_STEPS
    return stage.skip(context)
