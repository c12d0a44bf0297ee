"""WebDataset tar shards: a set is one ``.tar`` or a brace pattern of them
(``shards-{000..009}.tar``), read in the order the pattern names them.

WebDataset groups a sample's files by key, the member's path up to the first dot of its
name (``0001.jpg``, ``0001.json`` and ``0001.cls`` are one sample). The first image member
of each sample is the sample's image; its other members are listed as skipped, as a
folder's files that are not images are. Members are read in place, at their offset in the
shard, so shards must be uncompressed tar files.
"""

from __future__ import annotations

import logging
import os
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from visdiff.decoding import has_image_extension
from visdiff.errors import InputError
from visdiff.image_sets import ImageSet, SkippedImage, display_path
from visdiff.sources.base import LoadOptions, assemble, probe_located, warn_of_non_images
from visdiff.sources.braces import expand_braces

log = logging.getLogger(__name__)

SUFFIX = ".tar"


@dataclass(frozen=True)
class TarMember:
    """An image stored as a member of a tar shard: where its bytes start, and how many."""

    tar: Path
    member: str
    offset: int
    size: int

    @property
    def file(self) -> Path:
        return self.tar

    @property
    def memo_key(self) -> bytes:
        # NUL ends the shard's path: no file path can hold one.
        return os.fsencode(os.path.abspath(self.tar)) + b"\0" + os.fsencode(self.member)

    @property
    def label(self) -> str:
        return f"{display_path(self.tar)}:{display_path(self.member)}"

    def read(self) -> bytes:
        with open(self.tar, "rb") as shard:
            shard.seek(self.offset)
            data = shard.read(self.size)
        if len(data) != self.size:
            raise OSError(f"the shard ends {self.size - len(data)} byte(s) before the end of this member")
        return data


def accepts(source) -> bool:
    return isinstance(source, Path) and source.suffix.lower() == SUFFIX


def shard_paths(pattern: Path) -> list[Path]:
    """The shards a ``.tar`` path or brace pattern names, or ``InputError`` naming the pattern
    and the shards it names that are not there."""
    shards = [Path(name) for name in expand_braces(str(pattern))]
    missing = [shard for shard in shards if not shard.is_file()]
    if not missing:
        return shards
    if len(shards) == 1:
        raise InputError(f"no such file or folder: {display_path(pattern)}")
    shown = ", ".join(display_path(shard) for shard in missing[:3]) + (" ..." if len(missing) > 3 else "")
    if len(missing) == len(shards):
        raise InputError(f"no file matches {display_path(pattern)}: none of its {len(shards)} tar shards exists "
                         f"({shown})")
    raise InputError(f"{len(missing)} of the {len(shards)} tar shards of {display_path(pattern)} do not exist: {shown}")


@dataclass
class ShardListing:
    """The image members of shards, the first of each sample, and the members passed over:
    ``not_images`` (listed as skipped with one summary warning), ``more_images`` (another image
    of a sample already taken) and ``unreadable`` (shards, or their tails, that cannot be read)."""

    members: list[TarMember] = field(default_factory=list)
    not_images: list[SkippedImage] = field(default_factory=list)
    more_images: list[SkippedImage] = field(default_factory=list)
    unreadable: list[SkippedImage] = field(default_factory=list)

    @property
    def skipped(self) -> list[SkippedImage]:
        return [*self.unreadable, *self.not_images, *self.more_images]

    def add(self, shard: Path, info: tarfile.TarInfo, samples: dict[str, str]) -> None:
        """``info`` as an image of its sample, or as skipped with the reason."""
        member = TarMember(shard, info.name, info.offset_data, info.size)
        if not info.isfile():
            self.not_images.append(SkippedImage(member.label,
                                                "not a regular file (a link or special member of the tar)"))
        elif not has_image_extension(info.name):
            self.not_images.append(SkippedImage(member.label, "not an image file"))
        elif (key := sample_key(info.name)) in samples:
            self.more_images.append(SkippedImage(member.label, f"another image of sample {display_path(key)} "
                                                               f"({display_path(samples[key])} is used)"))
        else:
            samples[key] = info.name
            self.members.append(member)


def sample_key(name: str) -> str:
    """WebDataset's sample key of a member: its path up to the first dot of its file name."""
    folder, file_name = posixpath.split(name)
    return posixpath.join(folder, file_name.partition(".")[0])


def list_members(shards: list[Path]) -> ShardListing:
    """The members of ``shards`` in order; hidden files (``._x.jpg`` from macOS tar) are left
    out, as in folders."""
    listing = ShardListing()
    for shard in shards:
        samples: dict[str, str] = {}
        try:
            with tarfile.open(shard, "r:") as archive:
                for info in archive:
                    if not info.isdir() and not posixpath.basename(info.name).startswith("."):
                        listing.add(shard, info, samples)
        except (tarfile.TarError, OSError) as e:
            # The members listed before the damage are kept.
            reason = f"unreadable tar shard ({e}); shards are read as uncompressed tar files"
            log.warning("skipping %s: %s", display_path(shard), reason)
            listing.unreadable.append(SkippedImage(display_path(shard), reason))
    return listing


def load(pattern: Path, options: LoadOptions) -> ImageSet:
    listing = list_members(shard_paths(pattern))
    if not listing.members:
        first = listing.unreadable[0] if listing.unreadable else None
        detail = f"{first.source}: {first.reason}" if first else f"{len(listing.skipped)} other member(s) skipped"
        raise InputError(f"no image files in the tar shards {display_path(pattern)} ({detail})")
    warn_of_non_images([skipped.source for skipped in listing.not_images], pattern)
    if listing.more_images:
        log.warning("using the first image of each sample of %s: %d other image member(s) skipped, e.g. %s",
                    display_path(pattern), len(listing.more_images), listing.more_images[0].source)
    return assemble(probe_located(listing.members, options.hashes), name=options.name or pattern.name,
                    skipped=listing.skipped)
