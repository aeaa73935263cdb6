"""The native backend runs the backend conformance suite."""

from __future__ import annotations

from pipeline.extract.backends.native import NativeBackend
from tests.extract.backends.conformance import BackendConformance


class TestNativeBackend(BackendConformance):
    backend_cls = NativeBackend
