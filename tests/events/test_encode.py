"""The message value: orjson where it writes what json writes, json where orjson refuses."""

import json

from hypothesis import given
from hypothesis import strategies as st

from events.services import encode

values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(data=values)
def test_encoded_events_read_back_as_json_writes_them(data):
    envelope = {"id": "e-1", "type": "a.b", "data": data}
    try:
        reference = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate: refused before encoding (events.storable)
        return
    assert json.loads(encode(envelope)) == json.loads(reference)


def test_what_orjson_refuses_is_written_by_json():
    envelope = {"id": "e-1", "data": {"big": 2**70, 1: "non-string key"}}
    assert json.loads(encode(envelope)) == {
        "id": "e-1",
        "data": {"big": 2**70, "1": "non-string key"},
    }
