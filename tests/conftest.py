"""Fixtures shared by the test modules. Module-scoped: a test that trains or wraps a model
in place cannot leak into another module."""

import pytest

from coursekit import assets


@pytest.fixture(scope="module")
def tiny_llama():
    """``(model, tokenizer)`` of the tiny random Llama, loaded through ``from_pretrained``."""
    return assets.load_tiny("llama")
