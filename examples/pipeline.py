"""A queue pipeline over files, made real: download zips, unzip, split images from documents.

A fake "server" folder of zip files is created in a temporary folder: some zips
hold a small image (a PPM file), some a text document. The pipeline then

    downloads each zip (a local copy, 4 workers) -> unzips it
    -> splits images from documents
    -> images: batches of 10 -> process_images -> unbatch
    -> documents: filter out drafts -> process_doc
    -> merges both streams and prints the results.

Every task application is cached in the store, keyed by the task's code and the
item's content. After the first run, the script runs itself again in a NEW Python
process: that run computes nothing (see the computed/cached counts it prints).

    python examples/pipeline.py [store-folder]

The store defaults to ``.incgraph-pipeline/`` next to this script.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import zipfile
from pathlib import Path

import incgraph.queues as skorche

SERVER_ENV = "PIPELINE_DEMO_SERVER"  # where the fake server's zip files are


def server_folder() -> Path:
    return Path(os.environ[SERVER_ENV])


# -- tasks ---------------------------------------------------------------------------------


@skorche.task(max_workers=4)
def download_file(fname: str) -> bytes:
    """'Download' a zip: copy it from the server folder, return its bytes.

    Cached by file name, as a download by URL would be: a server that changes a
    file under the same name needs a version in the item (e.g. "cat1.zip@v2").
    """
    downloads = server_folder().parent / "downloads"
    downloads.mkdir(exist_ok=True)
    local = downloads / fname
    shutil.copyfile(server_folder() / fname, local)
    return local.read_bytes()


@skorche.task
def unzip_file(zip_bytes: bytes) -> tuple[str, bytes]:
    """The one file inside a zip: (name, content)."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        (name,) = archive.namelist()
        return name, archive.read(name)


@skorche.task
def process_images(batch: list[tuple[str, bytes]]) -> list[str]:
    """Processes multiple images in one batch: size and mean brightness of each."""
    results = []
    for name, data in batch:
        _, width, height, _, *pixels = data.split()
        mean = sum(int(p) for p in pixels) / len(pixels)
        results.append(f"{name}: {int(width)}x{int(height)} image, mean level {mean:.0f}")
    return results


@skorche.task
def process_doc(doc: tuple[str, bytes]) -> str:
    """Count the words of a document."""
    name, data = doc
    return f"{name}: {len(data.split())} words"


def image_or_doc(member: tuple[str, bytes]) -> bool:
    """True for an image, False for a document."""
    return member[0].endswith(".ppm")


def filter_fn(doc: tuple[str, bytes]) -> bool:
    """Drafts are irrelevant to us."""
    return b"DRAFT" not in doc[1]


# -- the fake server -------------------------------------------------------------------------


def _ppm(seed: int) -> bytes:
    width, height = 2 + seed % 3, 2
    pixels = " ".join(str((seed * 37 + i * 11) % 256) for i in range(width * height * 3))
    return f"P3 {width} {height} 255 {pixels}\n".encode()


def _doc(seed: int) -> bytes:
    words = " ".join(["lorem", "ipsum", "dolor"] * (seed + 1))
    return (("DRAFT " if seed % 3 == 2 else "") + words + "\n").encode()


def make_server(folder: Path, n_images: int = 25, n_docs: int = 8) -> list[str]:
    """Write the zip files (byte-for-byte the same on every run) and return their names."""
    folder.mkdir(parents=True, exist_ok=True)
    members = [(f"img{i:02d}.zip", f"img{i:02d}.ppm", _ppm(i)) for i in range(n_images)]
    members += [(f"doc{i:02d}.zip", f"doc{i:02d}.txt", _doc(i)) for i in range(n_docs)]
    for zip_name, member, data in members:
        info = zipfile.ZipInfo(member, date_time=(2024, 1, 1, 0, 0, 0))
        with zipfile.ZipFile(folder / zip_name, "w") as archive:
            archive.writestr(info, data)
    return [zip_name for zip_name, _, _ in members]


# -- the pipeline (as skorche writes it) ----------------------------------------------------------


def main(store: Path, label: str) -> None:
    skorche.reset(store=store)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ[SERVER_ENV] = str(Path(tmp) / "server")
        input_files = make_server(Path(tmp) / "server")

        queue_in = skorche.Queue(input_files)
        q_unzipped = skorche.chain([download_file, unzip_file], queue_in)

        (q_img, q_doc) = skorche.split(image_or_doc, q_unzipped)
        q_img_batch = skorche.batch(q_img, batch_size=10)
        q_doc_filtered = skorche.filter(filter_fn, q_doc)
        q_doc_out = skorche.map(process_doc, q_doc_filtered)
        q_img_out = skorche.map(process_images, q_img_batch)
        q_img_out = skorche.unbatch(q_img_out)
        q_out = skorche.merge((q_img_out, q_doc_out))
        if label == "first run":
            print(skorche.render_pipeline())
            print()
        report = skorche.run()

        results = sorted(q_out)
    print(f"{label}: {len(results)} results, e.g.")
    for line in results[:2] + results[-2:]:
        print(f"    {line}")
    print(textwrap.indent(report.summary(), "    "))
    print(
        f"{label}: computed={report.computed} cached={report.cached} "
        f"failures={len(report.failures)} ({report.duration:.2f} s)\n"
    )


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--again"]
    store = Path(args[0]) if args else Path(__file__).parent / ".incgraph-pipeline"
    if "--again" in sys.argv:
        main(store, "second run (new process)")
    else:
        main(store, "first run")
        subprocess.run([sys.executable, __file__, str(store), "--again"], check=True)
