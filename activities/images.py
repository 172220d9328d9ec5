"""Images for a model call: an https URL goes to the provider as it is (the provider fetches
it, not the worker); a file name is read from the worker's INPUT_DIR, never outside it,
and sent inline. History keeps the name the step gave, not the bytes."""

from __future__ import annotations

import base64
from pathlib import Path

from temporalio.exceptions import ApplicationError

from activities.definitions import confined, quoted, usable_name
from workflows.errors import FailureType

MAX_IMAGE_BYTES = 5_000_000
"""Anthropic's limit per image; OpenAI's is higher."""
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


def read_images(images: list[str], input_dir: Path) -> list[str]:
    """The images as the provider takes them: URLs, and data: URLs for files."""
    return [
        image if image.startswith("https://") else _inline(image, input_dir) for image in images
    ]


def _inline(name: str, input_dir: Path) -> str:
    path = input_dir / name
    media = MEDIA_TYPES.get(Path(name).suffix.lower())
    if name.startswith(("http://", "data:")):
        problem = "is not an https URL nor a file name"
    elif not usable_name(name) or Path(name).is_absolute() or not confined(path, input_dir):
        problem = "must name a file inside the worker's INPUT_DIR"
    elif media is None:
        problem = f"is not an image the providers take ({', '.join(MEDIA_TYPES)})"
    elif not path.is_file():
        problem = "is not a file in the worker's INPUT_DIR"
    elif path.stat().st_size > MAX_IMAGE_BYTES:
        problem = f"is over {MAX_IMAGE_BYTES} bytes"
    else:
        return f"data:{media};base64,{base64.b64encode(path.read_bytes()).decode()}"
    raise ApplicationError(
        f"image {quoted(name)} {problem}", type=FailureType.INVALID_IMAGE, non_retryable=True
    )
