"""Seed 004's example, with the typos fixed and its two missing functions defined."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import pytest

import incgraph.queues as skorche


def _declare(max_workers: int) -> tuple[skorche.Queue, list[str]]:
    @skorche.task(max_workers=max_workers)
    def download_file(fname):
        return f"downloaded/{fname}"

    @skorche.task
    def unzip_file(fname):
        return fname.removesuffix(".zip")

    @skorche.task
    def process_images(fname_list):
        return [f"image:{f}" for f in fname_list]

    @skorche.task
    def process_doc(fname):
        return f"doc:{fname}"

    def image_or_doc(fname):
        # Returns True if fname is an image or False if doc
        return "img" in fname

    def filter_fn(fname):
        return "skip" not in fname

    input_files = [f"img{i}.zip" for i in range(23)] + ["file1.zip", "file2.zip", "skip3.zip"]
    queue_in = skorche.Queue(input_files)

    q_unzipped = skorche.chain([download_file, unzip_file], queue_in)

    (q_img, q_doc) = skorche.split(image_or_doc, q_unzipped)
    q_img_batch = skorche.batch(q_img, batch_size=10)
    q_doc_filtered = skorche.filter(filter_fn, q_doc)
    q_doc_out = skorche.map(process_doc, q_doc_filtered)
    q_img_out = skorche.map(process_images, q_img_batch)
    q_img_out = skorche.unbatch(q_img_out)
    q_out = skorche.merge((q_img_out, q_doc_out))
    expected = [f"image:downloaded/img{i}" for i in range(23)] + [
        "doc:downloaded/file1",
        "doc:downloaded/file2",
    ]
    return q_out, expected


@pytest.mark.timeout(20)
@pytest.mark.parametrize("max_workers", [1, 2, 8, 32])
def test_seed_example_runs_and_terminates(max_workers: int, tmp_path: Path) -> None:
    """The seed's full example runs to the end for any max_workers, and q_out holds every result."""
    skorche.reset(store=tmp_path / "store")
    q_out, expected = _declare(max_workers)
    text = skorche.render_pipeline()
    assert "split: image_or_doc" in text and "batch: 10" in text
    report = skorche.run()
    assert report.ok
    results = list(q_out)
    assert sorted(results) == sorted(expected)
    assert not [t for t in threading.enumerate() if t.name.startswith("incgraph-queues")]


@pytest.mark.timeout(20)
def test_seed_quick_example_get_loop_ends(tmp_path: Path) -> None:
    """The README snippet's `while True: q_out.get()` loop ends with queue.Empty after run()."""
    skorche.reset(store=tmp_path / "store")

    def download_file(f):
        return f

    def unzip_file(f):
        return f.removesuffix(".zip")

    def is_cat_or_dog(f):
        return f.startswith("cat")

    def meow(f):
        return f"meow {f}"

    def woof(f):
        return f"woof {f}"

    input_files = ["cat1.zip", "cat2.zip", "dog1.zip"]
    q_in = skorche.Queue(input_files)
    q = skorche.chain([download_file, unzip_file], q_in)
    (q_cats, q_dogs) = skorche.split(is_cat_or_dog, q)
    q_cats = skorche.map(meow, q_cats)
    q_dogs = skorche.map(woof, q_dogs)
    q_out = skorche.merge([q_cats, q_dogs])
    skorche.run()
    results = []
    with pytest.raises(queue.Empty):
        while True:
            results.append(q_out.get())
    assert sorted(results) == ["meow cat1", "meow cat2", "woof dog1"]
