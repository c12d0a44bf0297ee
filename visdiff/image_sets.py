"""Image sets: where images come from, how they are identified and decoded.

An image is identified by the SHA-256 of its file bytes, never by its path, so renamed or
copied files share cache entries and edited files never reuse stale ones.

A file hashed while a set is loaded keeps the bytes that were hashed (up to
:data:`HELD_BYTES_PER_SET` per set) until the set is embedded: decoding uses them, so a cold
run reads each file once, and the pixels embedded are those of the hashed content even if
the file changes in between. Files taken from the hash memo are not read when loading.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import combinations
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from visdiff.errors import InputError
from visdiff.file_hashes import FileHashMemo
from visdiff.tables import DEFAULT_GROUP_COLUMN, TABLE_SUFFIXES, is_table, relative_to, select_rows

log = logging.getLogger(__name__)

# Files with these extensions are taken as images; any other file in a folder is identified
# by its content (a JPEG without an extension is still a JPEG), and listed as skipped if it
# is not an image.
IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".bmp", ".dib", ".gif", ".tif", ".tiff",
    ".avif", ".avifs", ".ico", ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".qoi", ".jp2", ".j2k", ".jpx",
})


def display_path(path: Path | str) -> str:
    """``path`` as printable text: bytes that are not UTF-8 in a file name (kept by Python as
    surrogates) are shown as ``\\xNN`` escapes, so the name can go into any output file."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", errors="backslashreplace")


@dataclass(frozen=True)
class ImageItem:
    """One image of a set: its content hash and where it came from."""

    key: str
    source: str
    path: Path | None = None
    image: Image.Image | None = field(default=None, compare=False, repr=False)
    # The encoded file itself: for images stored in a table rather than on disk, or a file's
    # bytes as read when it was hashed (held until the set is embedded).
    data: bytes | None = field(default=None, compare=False, repr=False)
    # The table row's key pairing it with images of the other set (--pair-by), if any.
    pair_key: str | None = None

    def open(self, *, min_size: int | None = None) -> Image.Image:
        """Decode to an RGB image (EXIF orientation applied). Raises ``InputError`` if unreadable.

        ``min_size``: a JPEG may be decoded at a reduced scale that keeps both sides at least
        this long (much cheaper for photos far larger than a model's input).
        """
        if self.image is not None:
            try:
                return to_rgb(self.image)
            except (OSError, ValueError) as e:
                raise InputError(f"{self.source}: cannot convert {self.image.mode} image to RGB ({e})") from e
        return decode_image_bytes(self.read(), source=self.source, min_size=min_size)

    def read(self) -> bytes:
        """The encoded image (a file's bytes). Raises ``InputError`` if the file cannot be read."""
        if self.data is not None:
            return self.data
        try:
            return read_bytes(self.path)
        except OSError as e:
            raise InputError(f"{self.source}: cannot read file ({e.strerror or e})") from e


@dataclass(frozen=True)
class SkippedImage:
    source: str
    reason: str


@dataclass(frozen=True)
class ImageSet:
    """An ordered set of readable images plus the inputs that were skipped, with reasons."""

    items: tuple[ImageItem, ...]
    skipped: tuple[SkippedImage, ...] = ()
    name: str = ""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def keys(self) -> list[str]:
        return [item.key for item in self.items]

    def drop(self, reasons: Mapping[int, str], *, warn: bool = True) -> ImageSet:
        """A copy without the items at the positions in ``reasons``, recorded as skipped
        (with one warning each unless ``warn=False``, for failures already reported)."""
        if not reasons:
            return self
        # Decode errors read "<source>: <reason>"; keep the source once, in its own field.
        reasons = {i: r.removeprefix(f"{self.items[i].source}: ") for i, r in reasons.items()}
        for i in sorted(reasons) if warn else ():
            log.warning("skipping %s: %s", self.items[i].source, reasons[i])
        return replace(
            self,
            items=tuple(it for i, it in enumerate(self.items) if i not in reasons),
            skipped=self.skipped
            + tuple(SkippedImage(self.items[i].source, reasons[i]) for i in sorted(reasons)),
        )

    def release_bytes(self) -> ImageSet:
        """A copy whose files no longer hold the bytes read when they were hashed (a later
        decode reads the file); images stored in a table keep theirs."""
        if not any(it.path is not None and it.data is not None for it in self.items):
            return self
        return replace(self, items=tuple(replace(it, data=None) if it.path is not None else it for it in self.items))

    def subset(self, positions: Sequence[int]) -> ImageSet:
        """The items at ``positions`` in that order (skipped inputs are kept as the record)."""
        return replace(self, items=tuple(self.items[i] for i in positions))

    def warn_of_repeats(self) -> None:
        """Warn when the set holds an image more than once (same content): every copy counts
        in the statistics as an image of its own, so p-values come out smaller than the
        distinct images support."""
        counts = Counter(self.keys)
        repeats = sum(n - 1 for n in counts.values())
        if repeats:
            key = next(k for k, n in counts.items() if n > 1)
            first, second = [item.source for item in self.items if item.key == key][:2]
            log.warning("image set %r holds %d image(s) more than once (same content, e.g. %s and %s); each copy "
                        "counts in the statistics", self.name, repeats, first, second)

    def require(self, min_images: int = 2) -> ImageSet:
        if len(self.items) < min_images:
            what = f"image set {self.name!r}" if self.name else "image set"
            detail = f" ({len(self.skipped)} unreadable files skipped)" if self.skipped else ""
            raise InputError(
                f"{what} has {len(self.items)} readable image(s){detail}; at least {min_images} needed"
            )
        return self


def warn_shared_images(image_sets: Sequence[ImageSet]) -> dict[str, int]:
    """Images (by content) held by two sets, per pair of set names; one warning per pair."""
    shared = {}
    for first, second in combinations(image_sets, 2):
        common = set(first.keys) & set(second.keys)
        if common:
            log.warning("sets %r and %r share %d image(s) (same content); each counts in both sets",
                        first.name, second.name, len(common))
            shared[f"{first.name} & {second.name}"] = len(common)
    return shared


def read_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


# Bytes of freshly hashed files a set holds for decoding: enough for thousands of photos,
# bounded for huge folders (beyond it, files are read again when decoded).
HELD_BYTES_PER_SET = 512 * 2**20


class _HeldBytes:
    """The bytes of files read for hashing, by path, up to :data:`HELD_BYTES_PER_SET` in all."""

    def __init__(self) -> None:
        self.left = HELD_BYTES_PER_SET
        self.data: dict[Path, bytes] = {}

    def keep(self, path: Path, data: bytes) -> None:
        if len(data) <= self.left:
            self.data[path] = data
            self.left -= len(data)


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_pil(image: Image.Image) -> str:
    """Content hash of an in-memory image: mode, size and pixels."""
    h = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def to_rgb(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; palette, alpha, CMYK, 16-bit and greyscale made 8-bit RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clipping at 255.
        import numpy as np

        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(arr.max(), 1.0)
        image = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype("uint8"), "L")
    if image.mode == "P" or image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        # Transparent areas become white, as they look in a viewer, not black.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


BOMB_REASON = "refused, too many pixels (decompression bomb?)"


@contextmanager
def refuse_bombs() -> Iterator[None]:
    """PIL's decompression-bomb warning raised as an error: images above
    ``Image.MAX_IMAGE_PIXELS`` (~89 Mpx) are refused, not only those above twice it (where
    PIL itself raises). PIL's other warnings (corrupt EXIF, odd TIFF tags) are silenced: a
    file that cannot be used is reported once, with its reason."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


@contextmanager
def _silence_libtiff(image: Image.Image) -> Iterator[None]:
    """libtiff prints its decoding errors straight to the process's stderr (file descriptor 2),
    past Python; while a TIFF decodes, that descriptor points at /dev/null. The failure itself
    still raises, and is reported with the file as skipped."""
    if image.format != "TIFF":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def decode_image_bytes(data: bytes, *, source: str = "<bytes>", min_size: int | None = None) -> Image.Image:
    """Fully decode ``data`` into RGB, or raise ``InputError`` naming ``source`` and the reason.

    With ``min_size``, JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) whose
    sides are still at least ``min_size``.
    """
    if not data:
        raise InputError(f"{source}: empty file")
    try:
        with refuse_bombs():
            image = Image.open(io.BytesIO(data))
            if min_size and image.format == "JPEG":
                image.draft("RGB", (min_size, min_size))
            with _silence_libtiff(image):
                image.load()
            return to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{source}: {BOMB_REASON}") from e
    except UnidentifiedImageError as e:
        raise InputError(f"{source}: not an image file") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{source}: unreadable image ({e})") from e


def _probe(path: Path, held: _HeldBytes | None = None) -> tuple[str | None, str]:
    """(content hash, '') for a file whose header PIL recognises, else (None, reason); the
    bytes of such a file go to ``held``.

    Only the header is parsed here (cheap); a file truncated after it passes and fails
    later, at decode time in the embedding step, which records it as skipped too.
    """
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            return None, f"not a regular file ({_file_kind(mode)})"
        data = read_bytes(path)
    except FileNotFoundError:
        return None, "no such file" if not path.is_symlink() else "broken link"
    except OSError as e:
        return None, f"cannot read file ({e.strerror or e})"
    probe = _probe_data(data)
    if held is not None and probe[0] is not None:
        held.keep(path, data)
    return probe


def _probe_data(data: bytes) -> tuple[str | None, str]:
    """(content hash, '') for bytes whose header PIL recognises, else (None, reason)."""
    if not data:
        return None, "empty file"
    try:
        with refuse_bombs(), Image.open(io.BytesIO(data)) as image:
            image.size  # noqa: B018 - header parsed; full decode happens when the image is used
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None, BOMB_REASON
    except UnidentifiedImageError:
        return None, "not an image file"
    except (OSError, SyntaxError, ValueError) as e:
        return None, f"unreadable image ({e})"
    return hash_bytes(data), ""


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return kind
    return "special file"


def _probe_paths(paths: list[Path], hashes: FileHashMemo | None,
                 held: _HeldBytes) -> list[tuple[str | None, str]]:
    probe = partial(_probe, held=held)
    return hashes.probe(paths, probe) if hashes is not None else [probe(p) for p in paths]


def _assemble(inputs: Iterable[tuple[str, tuple[str | None, str], dict]], *, name: str) -> ImageSet:
    """The set of (source, (key or None, reason), item fields) inputs: usable ones as items,
    the others skipped with one warning each."""
    items: list[ImageItem] = []
    skipped: list[SkippedImage] = []
    for source, (key, reason), fields in inputs:
        if key is None:
            log.warning("skipping %s: %s", source, reason)
            skipped.append(SkippedImage(source, reason))
        else:
            items.append(ImageItem(key=key, source=source, **fields))
    return ImageSet(tuple(items), tuple(skipped), name=name)


def _from_paths(paths: Iterable[Path], *, name: str, hashes: FileHashMemo | None = None) -> ImageSet:
    paths = list(paths)
    held = _HeldBytes()
    probed = _probe_paths(paths, hashes, held)
    inputs = ((display_path(p), probe, {"path": p, "data": held.data.get(p)}) for p, probe in zip(paths, probed))
    return _assemble(inputs, name=name)


def _from_pil(images: Sequence[Image.Image], *, name: str) -> ImageSet:
    """Keyed by the RGB pixels that will be embedded: the raw pixels alone would give two
    images with the same palette indices or EXIF-rotated copies the same key."""
    items: list[ImageItem] = []
    skipped: list[SkippedImage] = []
    for i, image in enumerate(images):
        source = f"<image {i}>"
        try:
            key = hash_pil(to_rgb(image))
        except (OSError, ValueError) as e:
            reason = f"cannot convert {image.mode} image to RGB ({e})"
            log.warning("skipping %s: %s", source, reason)
            skipped.append(SkippedImage(source, reason))
            continue
        items.append(ImageItem(key=key, source=source, image=image))
    return ImageSet(tuple(items), tuple(skipped), name=name)


@dataclass(frozen=True)
class FolderScan:
    """What a folder holds: image files to read (sorted by path), and what is not one, with
    the reason (sub-folders that cannot be read, special files, files that are not images)."""

    files: list[Path]
    skipped: list[SkippedImage]


def _is_image_content(path: Path) -> bool:
    try:
        with refuse_bombs(), Image.open(path):
            return True
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return False


def list_image_files(folder: Path) -> FolderScan:
    """The image files under ``folder``, recursively (hidden files and folders excluded).

    Links to folders are followed, as a dataset's set folder is often a folder of links to
    class folders; a folder reached a second time (a link back up, a loop, two links to one
    folder) is read once and the link listed as skipped. Files with an image extension are
    listed (also broken links, so they are reported); other regular files are identified by
    content. Named pipes, devices and sockets are never opened. Everything passed over is in
    ``skipped`` with its reason; unreadable sub-folders and non-image files are logged once
    each as a summary.
    """
    files: list[Path] = []
    skipped: list[SkippedImage] = []
    unreadable: list[str] = []
    folders_read = {_folder_id(folder)}

    def folder_error(error: OSError) -> None:
        unreadable.append(display_path(error.filename))
        skipped.append(SkippedImage(display_path(error.filename), f"cannot read folder ({error.strerror})"))

    def first_visit(sub_folder: Path) -> bool:
        try:
            identity = _folder_id(sub_folder)
        except OSError:  # gone since listed: os.walk reports it if it cannot be read
            return True
        if identity in folders_read:
            skipped.append(SkippedImage(display_path(sub_folder), "link to a folder already read"))
            return False
        folders_read.add(identity)
        return True

    for root, dirs, names in os.walk(folder, onerror=folder_error, followlinks=True):
        dirs[:] = [d for d in sorted(d for d in dirs if not d.startswith(".")) if first_visit(Path(root) / d)]
        for name in sorted(n for n in names if not n.startswith(".")):
            path = Path(root) / name
            try:
                mode = path.stat().st_mode
            except OSError:  # a broken link: reported when read
                mode = stat.S_IFREG
            if not stat.S_ISREG(mode):
                skipped.append(SkippedImage(display_path(path), f"not a regular file ({_file_kind(mode)})"))
            elif path.suffix.lower() in IMAGE_EXTENSIONS or _is_image_content(path):
                files.append(path)
            else:
                skipped.append(SkippedImage(display_path(path), "not an image file"))
    if unreadable:
        log.warning("cannot read %d sub-folder(s) of %s, skipped: %s", len(unreadable), display_path(folder),
                    ", ".join(unreadable[:3]) + (" ..." if len(unreadable) > 3 else ""))
    others = [s.source for s in skipped if not s.reason.startswith("cannot read folder")]
    if others:
        log.warning("skipping %d file(s) of %s that are not images: %s", len(others), display_path(folder),
                    ", ".join(others[:3]) + (" ..." if len(others) > 3 else ""))
    return FolderScan(sorted(files), skipped)


def _folder_id(folder: Path) -> tuple[int, int]:
    """(device, inode) of a folder, whatever link leads to it."""
    status = folder.stat()
    return status.st_dev, status.st_ino


# Tables whose paths lead outside their folder, said once each in a process.
_TABLES_LEADING_OUTSIDE: set[Path] = set()


def _from_table(path: Path, *, group: str | None, group_column: str, where: Mapping[str, str] | None,
                name: str | None, hashes: FileHashMemo | None, pair_by: str | None) -> ImageSet:
    """The images of a table's chosen rows, in row order: paths (relative to the table) are
    read like files, image bytes stored in the table are used as they are."""
    rows = select_rows(path, group=group, group_column=group_column, where=where, pair_by=pair_by)
    paths = [relative_to(rows.folder, image) for image in rows.images if isinstance(image, str)]
    home = rows.folder.resolve()
    outside = [p for p in paths if not p.resolve().is_relative_to(home)]
    if outside and path.resolve() not in _TABLES_LEADING_OUTSIDE:
        # Fine for a local tool, but worth a word (once per table: a sweep reads it per value
        # and side): a shared table may point anywhere.
        _TABLES_LEADING_OUTSIDE.add(path.resolve())
        log.warning("%d path(s) read from %s lead outside its folder (e.g. %s); reading them as given",
                    len(outside), display_path(path), display_path(outside[0]))
    held = _HeldBytes()
    probed_paths = iter(zip(paths, _probe_paths(paths, hashes, held)))
    pair_keys = rows.pair_keys or [None] * len(rows.images)

    def inputs():
        for image, label, pair_key in zip(rows.images, rows.labels, pair_keys, strict=True):
            if isinstance(image, bytes):
                yield label, _probe_data(image), {"data": image, "pair_key": pair_key}
            else:
                file, probe = next(probed_paths)
                yield display_path(file), probe, {"path": file, "data": held.data.get(file), "pair_key": pair_key}

    return _assemble(inputs(), name=name or rows.group or path.stem)


def check_table_options(source, *, group: str | None = None, where: Mapping[str, str] | None = None,
                        pair_by: str | None = None) -> None:
    """``InputError`` when a group, ``where`` or ``pair_by`` is given for a source that is not a
    table: row selection and pairing on anything else would be silently ignored."""
    is_path = isinstance(source, (str, os.PathLike))
    if not (group is not None or where or pair_by is not None) or (is_path and is_table(Path(source))):
        return
    what = display_path(source) if is_path else "a list of images"
    if group is not None or where:
        raise InputError(f"a group or --where selects rows of a table; {what} is not one "
                         "(a table is a .csv, .parquet or datasets folder)")
    raise InputError(f"--pair-by {pair_by!r} pairs rows of tables; {what} is not one: list both sets in a "
                     "CSV with a path column and the key column (a .csv, .parquet or datasets folder)")


def existing_path(source: str | os.PathLike) -> Path:
    """``source`` as a Path, or ``InputError`` when nothing is there."""
    path = Path(source)
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    return path


def load_image_set(source, *, group: str | None = None, group_column: str = DEFAULT_GROUP_COLUMN,
                   where: Mapping[str, str] | None = None, name: str | None = None,
                   hashes: FileHashMemo | None = None, pair_by: str | None = None) -> ImageSet:
    """Build an :class:`ImageSet` from a folder, a table, a list of paths, or PIL images.

    Parameters
    ----------
    source : folder, table, sequence of paths, sequence of ``PIL.Image.Image``, or ImageSet
        A folder is searched recursively for image files (sorted). A table is a CSV, a Parquet
        file or a ``datasets`` ``save_to_disk`` folder with a path column (relative to the
        table) or an image-bytes column (see :mod:`visdiff.tables`).
    group : str, optional
        Which value of the group column to take from a table with several groups.
    group_column : str
        The table's group column (default ``group_name``, as in VisDiffBench's CSVs).
    where : mapping, optional
        Keep only the table rows whose columns equal these values.
    name : str, optional
        Label for messages and reports; defaults to the folder or group name.
    hashes : FileHashMemo, optional
        Remembered hashes of unchanged files (:meth:`CacheRoot.file_hashes`), so they are not
        read again.
    pair_by : str, optional
        A table column whose value becomes each image's ``pair_key`` (see :mod:`visdiff.pairs`).

    Unreadable, empty or non-image files are skipped with one warning each and listed in
    ``ImageSet.skipped``. A missing path raises :class:`InputError`.
    """
    if isinstance(source, ImageSet):
        return source
    check_table_options(source, group=group, where=where, pair_by=pair_by)
    if isinstance(source, (str, os.PathLike)):
        path = existing_path(source)
        if is_table(path):
            return _from_table(path, group=group, group_column=group_column, where=where, name=name, hashes=hashes,
                               pair_by=pair_by)
        if path.is_dir():
            scan = list_image_files(path)
            if not scan.files:
                raise InputError(f"folder {display_path(path)} contains no image files"
                                 + (f" ({len(scan.skipped)} other entries skipped)" if scan.skipped else ""))
            image_set = _from_paths(scan.files, name=name or path.name, hashes=hashes)
            return replace(image_set, skipped=tuple(scan.skipped) + image_set.skipped)
        # One image where a set is expected: most often a shell pattern (dir/*.jpg) that gave one argument per file.
        folder = display_path(path.parent)
        hint = (f"; give the folder {folder} (a shell pattern like {folder}/*{path.suffix} passes each file as a set)"
                if path.suffix.lower() in IMAGE_EXTENSIONS else "")
        raise InputError(f"{path} is neither a folder nor a table of images "
                         f"({', '.join(sorted(TABLE_SUFFIXES))}, or a datasets save_to_disk folder){hint}")
    if isinstance(source, (bytes, Mapping)) or not isinstance(source, Iterable):
        raise InputError(f"cannot use {type(source).__name__} as an image set: give a folder, a table, "
                         "a list of paths or PIL images, or an ImageSet")
    seq = list(source)
    if seq and all(isinstance(x, Image.Image) for x in seq):
        return _from_pil(seq, name=name or "")
    bad = [x for x in seq if not isinstance(x, (str, os.PathLike))]
    if bad:
        raise InputError(f"cannot use {type(bad[0]).__name__} as an image source")
    missing = [p for p in seq if not Path(p).exists()]
    for p in missing:
        log.warning("skipping %s: no such file", p)
    present = [Path(p) for p in seq if Path(p).exists()]
    image_set = _from_paths(present, name=name or "", hashes=hashes)
    skipped_missing = tuple(SkippedImage(str(p), "no such file") for p in missing)
    return replace(image_set, skipped=skipped_missing + image_set.skipped)
