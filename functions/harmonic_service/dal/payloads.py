"""The payload bucket (claim check): clips, stage arrays (.npz), stage metadata and results (.json).

Keys (docs/design.md): `uploads/<caller digest>/<uuid>.wav`, `invocations/<id>/input.wav`,
`invocations/<id>/<stage>.npz`, `invocations/<id>/<stage>.json`, `invocations/<id>/result.json` (and the
pattern registry's, dal/registry.py: `patterns/<id>.bin`, `patterns/<id>/example.<format>`). Every write
is a whole-object PUT under a deterministic key, so a retried stage overwrites its own output: idempotent.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from harmonic_service.config import get_settings
from harmonic_service.dal import clients
from harmonic_service.tenancy import ANONYMOUS, owner_digest


def input_key(invocation_id: str) -> str:
    return f"invocations/{invocation_id}/input.wav"


def arrays_key(invocation_id: str, stage: str) -> str:
    return f"invocations/{invocation_id}/{stage}.npz"


def json_key(invocation_id: str, stage: str) -> str:
    return f"invocations/{invocation_id}/{stage}.json"


def result_key(invocation_id: str) -> str:
    return f"invocations/{invocation_id}/result.json"


def _upload_folder(owner: str) -> str:
    """The caller's folder under uploads/: a digest of its owner id (tenancy.py), so that the key
    says whose upload it is without naming the caller."""
    return f"uploads/{owner_digest(owner)}/"


def new_upload_key(owner: str = ANONYMOUS) -> str:
    return f"{_upload_folder(owner)}{uuid.uuid4()}.wav"


def is_upload_key(key: str, owner: str = ANONYMOUS) -> bool:
    """True for keys `new_upload_key` minted for `owner` (the only keys a client may name: another caller's
    upload is not theirs to submit)."""
    folder = _upload_folder(owner)
    if not (key.startswith(folder) and key.endswith(".wav")):
        return False
    name = key[len(folder) : -len(".wav")]
    try:
        return str(uuid.UUID(name)) == name
    except ValueError:
        return False


def _bucket() -> str:
    return get_settings().payload_bucket


def _is_missing(error: Exception) -> bool:
    code = getattr(error, "response", {}).get("Error", {}).get("Code", "")
    return code in {"404", "NoSuchKey", "NotFound"}


def put_bytes(key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    clients.s3().put_object(Bucket=_bucket(), Key=key, Body=data, ContentType=content_type)


def get_bytes(key: str) -> bytes:
    """The object's bytes; KeyError when it does not exist."""
    try:
        response = clients.s3().get_object(Bucket=_bucket(), Key=key)
    except Exception as error:
        if _is_missing(error):
            raise KeyError(key) from error
        raise
    return response["Body"].read()


def get_head_bytes(key: str, n: int) -> bytes:
    """The first `n` bytes of an object (a ranged GET); KeyError when it does not exist."""
    try:
        response = clients.s3().get_object(Bucket=_bucket(), Key=key, Range=f"bytes=0-{n - 1}")
    except Exception as error:
        if _is_missing(error):
            raise KeyError(key) from error
        raise
    return response["Body"].read()


def size_of(key: str) -> int | None:
    """The object's size in bytes, or None when it does not exist."""
    try:
        return int(clients.s3().head_object(Bucket=_bucket(), Key=key)["ContentLength"])
    except Exception as error:
        if _is_missing(error):
            return None
        raise


def copy(source_key: str, dest_key: str) -> None:
    bucket = _bucket()
    clients.s3().copy_object(Bucket=bucket, Key=dest_key, CopySource={"Bucket": bucket, "Key": source_key})


def put_json(key: str, value: Any) -> int:
    """Store `value` as JSON (strict: NaN and infinities are an error); returns the size in bytes."""
    body = json.dumps(value, allow_nan=False, separators=(",", ":")).encode()
    put_bytes(key, body, content_type="application/json")
    return len(body)


def get_json(key: str) -> Any:
    return json.loads(get_bytes(key))


def put_arrays(key: str, **arrays: np.ndarray) -> None:
    import numpy as np  # only the stages store arrays: the API function never imports numpy

    """Store named arrays as an .npz (uncompressed: audio barely compresses and this is faster)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    put_bytes(key, buffer.getvalue(), content_type="application/x-npz")


def get_arrays(key: str) -> dict[str, np.ndarray]:
    import numpy as np

    """The named arrays of an .npz written by `put_arrays` (never unpickles anything)."""
    with np.load(io.BytesIO(get_bytes(key)), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def presigned_get_url(key: str, expires_in: int) -> str:
    """A URL that lets its holder GET the object at `key` until it expires (served with the content type it
    was stored with)."""
    return clients.s3().generate_presigned_url(
        "get_object", Params={"Bucket": _bucket(), "Key": key}, ExpiresIn=expires_in, HttpMethod="GET"
    )


def delete(*keys: str) -> None:
    """Delete the objects at `keys` (one that is not there is no error)."""
    for key in keys:
        clients.s3().delete_object(Bucket=_bucket(), Key=key)


def presigned_put_url(key: str, expires_in: int, content_length: int | None = None) -> str:
    """A URL that lets its holder PUT one object at `key` until it expires.

    With `content_length`, the length is part of the signature: S3 refuses a body of any other size.
    """
    params: dict[str, Any] = {"Bucket": _bucket(), "Key": key, "ContentType": "audio/wav"}
    if content_length is not None:
        params["ContentLength"] = content_length
    return clients.s3().generate_presigned_url(
        "put_object", Params=params, ExpiresIn=expires_in, HttpMethod="PUT"
    )
