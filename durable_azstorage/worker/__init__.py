"""The worker host: partitions, control and work-item pumps, crash-safe checkpoints."""

from .host import Worker

__all__ = ["Worker"]
