"""Batch: a labelled container; action: the chainable-method marker."""

from __future__ import annotations

import numpy as np
import pytest

from incgraph.parallel import Batch, action


class Numbers(Batch):
    @action
    def double(self) -> Numbers:
        """Double every item."""
        self.data = [x * 2 for x in self.data]
        return self

    @action
    def forgets_to_return(self) -> None:
        """A broken action that returns nothing."""


def test_default_indices_are_positions() -> None:
    """A batch built from items alone labels them 0..n-1 and indexes by those labels."""
    batch = Batch(["a", "b", "c"])
    assert batch.indices == (0, 1, 2)
    assert len(batch) == 3
    assert batch[2] == "c"
    assert list(batch) == ["a", "b", "c"]


def test_labels_index_items() -> None:
    """With index= labels, batch[label] returns that label's item and get_pos its position."""
    batch = Batch(data=np.arange(6).reshape(3, 2), index=["x", "y", "z"])
    assert batch.indices == ("x", "y", "z")
    assert batch.get_pos("y") == 1
    assert batch["z"].tolist() == [4, 5]


def test_unknown_label_names_the_label() -> None:
    """Looking up a missing label raises KeyError naming the label."""
    with pytest.raises(KeyError, match="'w'"):
        Batch([1, 2], index=["a", "b"])["w"]


def test_index_length_must_match() -> None:
    """An index whose length differs from the data's is rejected with both counts."""
    with pytest.raises(ValueError, match="2 labels for 3 items"):
        Batch([1, 2, 3], index=["a", "b"])


def test_duplicate_labels_rejected() -> None:
    """Duplicate labels are rejected because lookups by label would be ambiguous."""
    with pytest.raises(ValueError, match="unique"):
        Batch([1, 2], index=["a", "a"])


def test_data_setter_keeps_length() -> None:
    """Assigning data of another length raises; same length replaces the items."""
    batch = Batch([1, 2])
    batch.data = [3, 4]
    assert batch.data == [3, 4]
    with pytest.raises(ValueError, match="3 items for 2 labels"):
        batch.data = [1, 2, 3]


def test_actions_chain_and_are_marked() -> None:
    """An action returns the batch, so calls chain, and carries is_action."""
    assert Numbers([1, 2]).double().double().data == [4, 8]
    assert Numbers.double.is_action is True
    assert Numbers.double.__name__ == "double"


def test_action_returning_non_batch_is_named() -> None:
    """An action that does not return a batch raises TypeError naming the action."""
    with pytest.raises(TypeError, match=r"Numbers\.forgets_to_return returned NoneType"):
        Numbers([1]).forgets_to_return()


def test_repr_previews_labels() -> None:
    """The repr shows the size and the first labels."""
    assert repr(Batch(list(range(10)))) == "Batch(10 items, indices=(0, 1, 2, 3, 4, ...))"
