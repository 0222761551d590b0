"""Video probing and frame extraction with PyAV. Django-free."""
from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import av

from projects.validation import UploadRejected


@dataclass(frozen=True)
class VideoInfo:
    fps: float | None
    duration_s: float | None
    width: int
    height: int


@dataclass(frozen=True)
class Frame:
    index: int  # index of the frame in the decoded stream
    timestamp_s: float
    jpeg: bytes
    progress: float  # 0..1, by time


def probe_video(data: bytes) -> VideoInfo:
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise UploadRejected("not_a_video", "The file has no video stream.")
            stream = container.streams.video[0]
            duration = None
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / av.time_base
            fps = float(stream.average_rate) if stream.average_rate else None
            return VideoInfo(fps, duration, stream.codec_context.width, stream.codec_context.height)
    except av.FFmpegError:
        raise UploadRejected("corrupt_video", "The video could not be read (corrupt or unsupported).") from None


def iter_video_frames(fh: BinaryIO, *, fps: float, max_frames: int) -> Iterator[Frame]:
    """Yield one frame every 1/fps seconds (the first frame at or after each tick)."""
    with av.open(fh) as container:
        stream = container.streams.video[0]
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        next_t, emitted = 0.0, 0
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / (fps or 1.0)
            if t + 1e-6 < next_t:
                continue
            out = io.BytesIO()
            frame.to_image().save(out, format="JPEG", quality=92)
            progress = min(1.0, t / duration) if duration else 0.0
            yield Frame(index, t, out.getvalue(), progress)
            emitted += 1
            next_t += 1.0 / fps
            if emitted >= max_frames:
                return
