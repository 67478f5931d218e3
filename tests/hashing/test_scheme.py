"""The scheme tag, combine() and node_key(): domain-tagged, injective, order as documented."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import incgraph.hashing as hashing
from incgraph.errors import HashingError
from incgraph.hashing import SCHEME, combine, data_version, node_key, node_key_function

HEX32 = st.text("0123456789abcdef", min_size=32, max_size=32)


def test_public_names_are_exactly_the_documented_api() -> None:
    """incgraph.hashing exports the nine documented names, sorted."""
    assert hashing.__all__ == sorted(hashing.__all__)
    assert set(hashing.__all__) == {
        "SCHEME",
        "code_version",
        "combine",
        "combiner",
        "data_version",
        "node_key",
        "node_key_function",
        "node_key_maker",
        "register_hasher",
    }


def test_scheme_is_a_short_tag() -> None:
    """SCHEME is a non-empty string tag."""
    assert isinstance(SCHEME, str) and SCHEME


def test_combine_returns_32_lowercase_hex() -> None:
    """combine gives 32 lowercase hex characters."""
    out = combine("D", "a", "b")
    assert len(out) == 32 and out == out.lower() and int(out, 16) >= 0


@given(st.lists(st.text(max_size=5), max_size=4), st.lists(st.text(max_size=5), max_size=4))
def test_combine_is_injective_on_part_lists(a: list[str], b: list[str]) -> None:
    """Different part lists (even with equal concatenations) give different hashes."""
    assert (combine("D", *a) == combine("D", *b)) == (a == b)


def test_combine_separates_domains() -> None:
    """The same parts under different domains hash differently."""
    assert combine("A", "x") != combine("B", "x")
    assert combine("A", "") != combine("A")
    assert combine("Ab", "c") != combine("A", "bc")


def test_combine_differs_from_data_version_of_the_same_text() -> None:
    """combine and data_version live in different domains."""
    assert combine("D", "x") != data_version("x")
    assert combine("D") != data_version("D")


def test_combine_refuses_non_strings() -> None:
    """combine raises HashingError naming the bad part types."""
    with pytest.raises(HashingError, match="int"):
        combine("D", "a", 3)  # type: ignore[arg-type]


def test_combine_accepts_lone_surrogates() -> None:
    """Strings that are not valid UTF-8 (lone surrogates) still combine, distinctly."""
    assert combine("D", "\ud800") != combine("D", "\ud801")


@given(HEX32, HEX32, st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True), HEX32))
def test_node_key_is_combine_of_sorted_pairs(cv: str, iv: str, inputs: dict[str, str]) -> None:
    """node_key equals combine('NodeKey', code, init, *sorted name=dv pairs)."""
    pairs = sorted(f"{k}={v}" for k, v in inputs.items())
    assert node_key(cv, iv, inputs) == combine("NodeKey", cv, iv, *pairs)


def test_node_key_ignores_input_order_but_not_names() -> None:
    """Input order does not matter; which name carries which version does."""
    a, b = data_version(1), data_version(2)
    assert node_key("c", "i", {"x": a, "y": b}) == node_key("c", "i", {"y": b, "x": a})
    assert node_key("c", "i", {"x": a, "y": b}) != node_key("c", "i", {"x": b, "y": a})
    assert node_key("c", "i", {}) != node_key("i", "c", {})


def test_node_key_refuses_non_string_versions() -> None:
    """A code or init version that is not a str raises HashingError."""
    with pytest.raises(HashingError, match="code_version"):
        node_key(None, "i", {})  # type: ignore[arg-type]


GOLDEN = [
    (None, "7fd9b16198c9f6eea5092e5658cdee7a"),
    (42, "26ceb448b9633918c1d0d96fb8262922"),
    ("abc", "c6261aed916507fd6d425549bc57734b"),
    ({"a": [1, 2.5, (True, None)], "b": {b"x", frozenset()}}, "1bad4deaa966e53a7655463ce3d614f4"),
]


@pytest.mark.parametrize(("value", "pinned"), GOLDEN)
def test_hashes_are_pinned_for_this_scheme(value: object, pinned: str) -> None:
    """Encodings are frozen per SCHEME: changing one of these hashes requires bumping SCHEME."""
    assert data_version(value) == pinned


def test_package_imports_and_hashes_without_numpy_or_pandas() -> None:
    """incgraph.hashing imports lazily: it works where numpy and pandas cannot be imported."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['numpy'] = None\n"
        "sys.modules['pandas'] = None\n"
        "from incgraph.hashing import data_version, code_version\n"
        "def f(x):\n"
        "    return x\n"
        "print(data_version({'a': [1, 2.0]}), code_version(f))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == data_version({"a": [1, 2.0]})


@settings(max_examples=300, deadline=None)
@given(code=st.text(), init=st.text(), name=st.text(), dv=st.text())
def test_node_key_function_is_node_key(code: str, init: str, name: str, dv: str) -> None:
    """node_key_function(code, init, name)(dv) is node_key(code, init, {name: dv}) for any strings."""
    assert node_key_function(code, init, name)(dv) == node_key(code, init, {name: dv})


def test_node_key_function_rejects_non_strings() -> None:
    """Versions and names must be strings, as node_key requires."""
    with pytest.raises(HashingError, match="must be str"):
        node_key_function(b"c", "i", "item")  # type: ignore[arg-type]


def test_node_key_maker_gives_node_keys() -> None:
    """A bound key maker gives node_key's key for any inputs, and checks the versions' types."""
    from incgraph.errors import HashingError
    from incgraph.hashing import node_key, node_key_maker

    key = node_key_maker("c" * 32, "i" * 32)
    for inputs in ({}, {"x": "1" * 32}, {"b": "2" * 32, "a": "3" * 32, "é": "4" * 32}):
        assert key(inputs) == node_key("c" * 32, "i" * 32, inputs)
    assert key({"x": "1" * 32}) != node_key_maker("c" * 32, "j" * 32)({"x": "1" * 32})
    with pytest.raises(HashingError, match="node_key_maker"):
        node_key_maker(b"c", "i")  # type: ignore[arg-type]


def test_combiner_gives_combine_hashes() -> None:
    """A bound combiner hashes a list of parts as combine does under its domain."""
    from incgraph.errors import HashingError
    from incgraph.hashing import combine, combiner

    flow_task = combiner("FlowTask")
    for parts in ([], ["a"], ["ab", "c"], ["é", "x=1"]):
        assert flow_task(parts) == combine("FlowTask", *parts)
    assert flow_task(["a"]) != combiner("Other")(["a"])
    with pytest.raises(HashingError, match="combiner"):
        combiner(b"FlowTask")  # type: ignore[arg-type]
