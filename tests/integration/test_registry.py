"""The pattern registry under moto: service calls, the version-driven warm cache, and the match stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harmonic import decode_wav
from harmonic.serialization import pack
from harmonic_service import pattern_cache, service
from harmonic_service.errors import BadRequest, NotFound
from harmonic_service.logic.patterns import PatternSet

KEYWORDS = Path(__file__).resolve().parents[1] / "data" / "keywords"
SPEECH = Path(__file__).resolve().parents[1] / "data" / "speech" / "en_us_m.wav"


def _wav(name: str) -> bytes:
    return (KEYWORDS / name).read_bytes()


def test_register_list_get_delete(aws) -> None:
    created = service.create_pattern("music", "template", _wav("enrol_music_0.wav"), None)
    assert created["kind"] == "template"
    assert created["index_version"] == 1
    pattern_id = created["pattern_id"]  # its artifact, and the clip it was registered from (a WAV)
    kept = {f"patterns/{pattern_id}.bin", f"patterns/{pattern_id}/example.wav"}
    assert set(aws.s3_keys("patterns/")) == kept
    assert service.get_pattern(created["pattern_id"])["name"] == "music"
    assert service.list_patterns()["count"] == 1
    service.delete_pattern(created["pattern_id"])
    assert service.list_patterns() == {"patterns": [], "count": 0}
    assert aws.s3_keys("patterns/") == []
    with pytest.raises(NotFound):
        service.delete_pattern(created["pattern_id"])
    with pytest.raises(NotFound):
        service.get_pattern("__index__")


@pytest.mark.parametrize(
    ("name", "kind", "audio", "code"),
    [
        ("", "template", b"RIFF", "bad_request"),
        ("x" * 65, "template", b"RIFF", "bad_request"),
        ("ok", "melody", b"RIFF", "bad_request"),
        ("ok", "template", b"not a wav at all, not even close", "invalid_audio"),
    ],
)
def test_bad_registrations_are_bad_requests(aws, name, kind, audio, code) -> None:
    with pytest.raises(BadRequest) as refused:
        service.create_pattern(name, kind, audio, None)
    assert refused.value.code == code
    assert service.list_patterns()["count"] == 0


def test_warm_cache_reloads_only_what_changed(aws) -> None:
    first = service.create_pattern("music", "template", _wav("enrol_music_0.wav"), None)
    service.create_pattern("fox", "fingerprint", SPEECH.read_bytes(), None)
    pattern_cache.clear()
    fetched = pattern_cache.stats["artifacts_fetched"]
    assert len(pattern_cache.current()) == 2
    assert pattern_cache.stats["artifacts_fetched"] == fetched + 2
    reloads = pattern_cache.stats["reloads"]
    assert len(pattern_cache.current()) == 2
    assert pattern_cache.stats["reloads"] == reloads  # same version: answered from memory
    service.delete_pattern(first["pattern_id"])
    assert len(pattern_cache.current()) == 1
    assert pattern_cache.stats["artifacts_fetched"] == fetched + 2  # a deletion fetches nothing
    service.create_pattern("banana", "template", _wav("enrol_banana_0.wav"), None)
    assert len(pattern_cache.current()) == 2
    assert pattern_cache.stats["artifacts_fetched"] == fetched + 3  # only the new artifact


def test_an_unreadable_artifact_is_computed_again_from_its_example(aws) -> None:
    """An artifact of an older format (a format-2 fingerprint, from before the 2 s target zone) or a corrupt
    one is computed again from the stored example and still matches; one whose example is gone too is left
    out. Neither fails the match."""
    older = service.create_pattern("fox", "fingerprint", SPEECH.read_bytes(), None)
    corrupt = service.create_pattern("music", "template", _wav("enrol_music_0.wav"), None)
    lost = service.create_pattern("banana", "template", _wav("enrol_banana_0.wav"), None)
    format_2 = pack(
        b"HFPT",
        {"format": 2, "frame_rate": 62.5, "duration_s": 1.0},
        {"hashes": np.arange(3, dtype=np.uint32), "times": np.zeros(3, np.int32)},
    )
    aws.s3.put_object(Bucket=aws.bucket, Key=f"patterns/{older['pattern_id']}.bin", Body=format_2)
    aws.s3.put_object(Bucket=aws.bucket, Key=f"patterns/{corrupt['pattern_id']}.bin", Body=b"HTPL corrupt")
    aws.s3.put_object(Bucket=aws.bucket, Key=f"patterns/{lost['pattern_id']}.bin", Body=b"HTPL corrupt")
    aws.s3.delete_object(Bucket=aws.bucket, Key=f"patterns/{lost['pattern_id']}/example.wav")
    pattern_cache.clear()
    rebuilt, unreadable = pattern_cache.stats["rebuilt"], pattern_cache.stats["unreadable"]
    patterns = pattern_cache.current()
    assert pattern_cache.stats["rebuilt"] == rebuilt + 2
    assert pattern_cache.stats["unreadable"] == unreadable + 1
    assert set(patterns.names) == {older["pattern_id"], corrupt["pattern_id"]}
    clip = decode_wav(SPEECH.read_bytes())
    found = patterns.match(clip.samples, clip.sample_rate)
    assert [match["name"] for match in found] == ["fox"]
    assert found[0]["score"] > 0.5


def _read_older_template(aws, older: bytes, key: str) -> PatternSet:
    """Store ``older`` as the template at ``key`` and read the registry afresh: the template is read as it is
    (not rebuilt), counted as matched without what its format lacks, and still finds "weather"."""
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=older)
    pattern_cache.clear()
    rebuilt, without = pattern_cache.stats["rebuilt"], pattern_cache.stats["without_embeddings"]
    patterns = pattern_cache.current()
    assert pattern_cache.stats["rebuilt"] == rebuilt
    assert pattern_cache.stats["without_embeddings"] == without + 1
    clip = decode_wav(_wav("query_weather_1.wav"))
    assert [match["name"] for match in patterns.match(clip.samples, clip.sample_rate)] == ["weather"]
    return patterns


def test_a_template_stored_before_speech_embeddings_is_read_and_matched_without_them(aws) -> None:
    """A deployment upgraded from template format 2 (mel power only) keeps matching its stored templates:
    they are read as they are (logged and counted), not recomputed at the match stage's cold start."""
    from harmonic import Template

    stored = service.create_pattern("weather", "template", _wav("enrol_weather_0.wav"), None)
    key = f"patterns/{stored['pattern_id']}.bin"
    current = Template.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    meta = {"format": 2, "duration_s": current.duration_s, "warps": list(current.warps)}
    patterns = _read_older_template(aws, pack(b"HTPL", meta, {"mel_db": current.mel_db}), key)
    assert patterns.templates[stored["pattern_id"]].embedding is None


def test_a_template_stored_before_whisper_rows_is_matched_without_them_until_rebuilt(aws) -> None:
    """Template format 3 (speech embeddings, no encoder rows) is read as it is (logged and counted, not
    recomputed at cold start); a rebuild stores format 4 with the example's encoder rows."""
    import dataclasses

    from harmonic import Template

    stored = service.create_pattern("weather", "template", _wav("enrol_weather_0.wav"), None)
    key = f"patterns/{stored['pattern_id']}.bin"
    current = Template.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    assert current.whisper is not None
    older = dataclasses.replace(current, whisper=None).to_bytes()
    patterns = _read_older_template(aws, older.replace(b'"format":4', b'"format":3', 1), key)
    assert patterns.templates[stored["pattern_id"]].whisper is None
    assert patterns.templates[stored["pattern_id"]].embedding is not None
    service.rebuild_pattern(stored["pattern_id"])
    again = Template.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    assert again == current


def test_a_template_with_the_sixth_layers_rows_is_matched_without_them_until_rebuilt(aws) -> None:
    """Format-4 templates stored before the rows' id was (their rows the encoder's sixth layer's) are read
    without the rows, which a clip's fifth-layer rows must not be compared with (logged and counted); a
    rebuild stores the fifth layer's, with their id."""
    from harmonic import Template
    from harmonic.serialization import unpack

    stored = service.create_pattern("weather", "template", _wav("enrol_weather_0.wav"), None)
    key = f"patterns/{stored['pattern_id']}.bin"
    data = aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()
    current = Template.from_bytes(data)
    meta, arrays = unpack(data, b"HTPL")
    del meta["whisper_rows"]
    patterns = _read_older_template(aws, pack(b"HTPL", meta, arrays), key)
    assert patterns.templates[stored["pattern_id"]].whisper is None
    service.rebuild_pattern(stored["pattern_id"])
    assert Template.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()) == current


def test_a_keyword_stored_before_its_encoder_rows_is_matched_without_them_until_rebuilt(aws) -> None:
    """A keyword by spelling and example stored before their encoder rows were kept is read as it is
    (logged and counted); a rebuild stores its example's rows and one per synthesized voice."""
    from harmonic import phonetic, synthesis

    stored = service.create_pattern("weather", "keyword", _wav("enrol_weather_0.wav"), None, text="weather")
    key = f"patterns/{stored['pattern_id']}.bin"
    current = phonetic.Keyword.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    assert current.whisper is not None
    assert len(current.synthesized_whisper) == len(synthesis.VOICES)
    older = phonetic.Keyword(
        current.text,
        current.pronunciations,
        current.embedding,
        current.synthesized,
        current.synthesized_level,
    )
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=older.to_bytes())
    pattern_cache.clear()
    without = pattern_cache.stats["without_embeddings"]
    read = pattern_cache.current().keywords[stored["pattern_id"]]
    assert pattern_cache.stats["without_embeddings"] == without + 1
    assert read.whisper is None
    assert read.synthesized_whisper == ()
    service.rebuild_pattern(stored["pattern_id"])
    rebuilt = pattern_cache.current().keywords[stored["pattern_id"]]
    assert np.array_equal(rebuilt.whisper, current.whisper)
    assert len(rebuilt.synthesized_whisper) == len(synthesis.VOICES)


def test_a_keyword_stored_before_synthesized_examples_is_matched_without_them_until_rebuilt(aws) -> None:
    """A keyword by spelling stored by an earlier deployment (no examples synthesized from its spelling) is
    read as it is (logged and counted); a rebuild stores it with one synthesized example per voice."""
    from harmonic import phonetic, synthesis

    stored = service.create_pattern("weather", "keyword", None, None, text="weather")
    key = f"patterns/{stored['pattern_id']}.bin"
    current = phonetic.Keyword.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    assert len(current.synthesized) == len(synthesis.VOICES)
    older = phonetic.Keyword(current.text, current.pronunciations)
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=older.to_bytes())
    pattern_cache.clear()
    without = pattern_cache.stats["without_embeddings"]
    patterns = pattern_cache.current()
    assert pattern_cache.stats["without_embeddings"] == without + 1
    assert patterns.keywords[stored["pattern_id"]].synthesized == ()
    service.rebuild_pattern(stored["pattern_id"])
    rebuilt = phonetic.Keyword.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    assert len(rebuilt.synthesized) == len(synthesis.VOICES)
    assert rebuilt.synthesized_level == current.synthesized_level
    assert pattern_cache.current().keywords[stored["pattern_id"]].synthesized != ()


def test_a_keyword_stored_before_its_background_level_is_matched_by_the_fixed_point_until_rebuilt(
    aws,
) -> None:
    """A keyword whose synthesized examples were stored without their level on background speech (the
    previous release) is read as it is, counted as uncalibrated and matched with the fixed neutral point; a
    rebuild measures the level."""
    from harmonic import phonetic
    from harmonic_service.logic.patterns import SYNTHESIZED_NEUTRAL, synthesized_neutral

    stored = service.create_pattern("weather", "keyword", None, None, text="weather")
    key = f"patterns/{stored['pattern_id']}.bin"
    current = phonetic.Keyword.from_bytes(aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read())
    assert current.synthesized_level is not None
    older = phonetic.Keyword(current.text, current.pronunciations, None, current.synthesized)
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=older.to_bytes())
    pattern_cache.clear()
    uncalibrated, without = pattern_cache.stats["uncalibrated"], pattern_cache.stats["without_embeddings"]
    read = pattern_cache.current().keywords[stored["pattern_id"]]
    assert pattern_cache.stats["uncalibrated"] == uncalibrated + 1
    assert pattern_cache.stats["without_embeddings"] == without
    assert read.synthesized_level is None
    assert synthesized_neutral(read) == SYNTHESIZED_NEUTRAL
    service.rebuild_pattern(stored["pattern_id"])
    rebuilt = pattern_cache.current().keywords[stored["pattern_id"]]
    assert rebuilt.synthesized_level == current.synthesized_level
    assert synthesized_neutral(rebuilt) == pytest.approx(current.synthesized_level + 0.034)


def test_pipeline_matches_a_registered_keyword(aws) -> None:
    examples = [
        service.create_pattern("weather", "template", _wav(f"enrol_weather_{k}.wav"), None) for k in range(3)
    ]
    accepted = service.submit_invocation(_wav("query_weather_0.wav"), None, "pipeline", None, None, "corr")
    aws.drain()
    result = service.get_invocation(accepted["invocation_id"])
    assert result["status"] == "SUCCEEDED"
    matches = result["result"]["matches"]
    assert matches[0]["pattern_id"] in {example["pattern_id"] for example in examples}
    assert [match["name"] for match in matches].count("weather") == 1  # examples of one word: one match
    assert 0.5 < matches[0]["start_s"] < 1.2


def test_options_patterns_narrow_the_match_stage(aws) -> None:
    examples = [
        service.create_pattern("weather", "template", _wav(f"enrol_weather_{k}.wav"), None) for k in range(3)
    ]
    weather = examples[2]  # the example closest to this query's voice: selected alone by its id
    service.create_pattern("music", "template", _wav("enrol_music_0.wav"), None)
    query = _wav("query_weather_0.wav")
    narrowed = service.submit_invocation(query, None, "pipeline", None, {"patterns": ["music"]}, "corr-1")
    by_id = service.submit_invocation(
        query, None, "pipeline", None, {"patterns": [weather["pattern_id"]]}, "corr-2"
    )
    aws.drain()
    narrowed_result = service.get_invocation(narrowed["invocation_id"])["result"]
    assert all(found["name"] == "music" for found in narrowed_result["matches"])
    by_id_result = service.get_invocation(by_id["invocation_id"])["result"]
    assert [found["name"] for found in by_id_result["matches"]] == ["weather"]
    analyzed = service.analyze(query, None, None, {"patterns": ["weather", "music"]})
    assert analyzed["matches"][0]["name"] == "weather"


def test_options_patterns_naming_nothing_registered_is_a_bad_request(aws) -> None:
    service.create_pattern("weather", "template", _wav("enrol_weather_0.wav"), None)
    for call in (
        lambda: service.submit_invocation(
            _wav("query_weather_0.wav"), None, "pipeline", None, {"patterns": ["weather", "nope"]}, "corr"
        ),
        lambda: service.analyze(_wav("query_weather_0.wav"), None, None, {"patterns": ["nope"]}),
    ):
        with pytest.raises(BadRequest, match="'nope'"):
            call()
    assert aws.s3_keys("invocations/") == []  # nothing accepted, nothing stored


def test_a_selected_pattern_deleted_before_match_skips_the_stage(aws) -> None:
    weather = service.create_pattern("weather", "template", _wav("enrol_weather_0.wav"), None)
    service.create_pattern("music", "template", _wav("enrol_music_0.wav"), None)
    accepted = service.submit_invocation(
        _wav("query_weather_0.wav"), None, "pipeline", None, {"patterns": ["weather"]}, "corr"
    )
    service.delete_pattern(weather["pattern_id"])
    aws.drain()
    result = service.get_invocation(accepted["invocation_id"])
    assert result["status"] == "SUCCEEDED"
    assert result["result"]["matches"] == []
    match_stage = next(stage for stage in result["stages"] if stage["name"] == "match")
    assert (match_stage["status"], match_stage["reason"]) == ("SKIPPED", "no selected pattern is registered")
