"""Generate ``visdiff/data/imagenet_concepts.json``: every WordNet noun synset that is an
ImageNet-1k class or an ancestor of one, with the classes beneath it.

Reads the WordNet 3.0 database files (``apt-get install wordnet-base`` puts them under
``/usr/share/wordnet``; ImageNet class ids are WordNet 3.0 noun offsets) and the ImageNet-1k
class order from ``timm`` (the order of the EfficientNet-Lite0 logits). Run:

    python scripts/build_concepts.py [--wordnet /usr/share/wordnet] [--out visdiff/data/imagenet_concepts.json]
"""

from __future__ import annotations

import argparse
import json
from collections import deque
from pathlib import Path

# Synsets this close to the root ("entity", "physical entity", "object", "whole") describe
# everything in a photo and never a difference; they are left out of the table.
MIN_DEPTH = 4
# Mass nouns whose plural reads wrong ("furnitures").
UNCOUNTABLE = {
    "furniture", "clothing", "fish", "sheep", "deer", "equipment", "produce", "footwear",
    "seafood", "machinery", "hardware", "wear", "game", "headgear", "tableware", "ware",
    "kitchenware", "cookware", "glassware", "stuff", "food", "fruit", "vegetation",
    "bread", "meat", "dessert", "fungus", "mollusk", "crustacean",
}


def read_synsets(data_noun: Path) -> dict[str, tuple[list[str], list[str]]]:
    """{offset: (lemmas with spaces, hypernym offsets incl. instance hypernyms)}."""
    synsets = {}
    with open(data_noun, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            fields = line.split(" | ")[0].split()
            offset, n_words = fields[0], int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
            pos = 4 + 2 * n_words
            n_ptrs = int(fields[pos])
            hypernyms = []
            for i in range(n_ptrs):
                symbol, target, target_pos = fields[pos + 1 + 4 * i: pos + 4 + 4 * i]
                if symbol in ("@", "@i") and target_pos == "n":
                    hypernyms.append(target)
            synsets[offset] = (lemmas, hypernyms)
    return synsets


def read_plural_exceptions(noun_exc: Path) -> dict[str, str]:
    """{singular: irregular plural} from WordNet's ``noun.exc`` (plural -> singular)."""
    plurals: dict[str, str] = {}
    for line in noun_exc.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2:
            plural, singular = (p.replace("_", " ") for p in parts)
            plurals.setdefault(singular, plural)
    return plurals


def pluralise_word(word: str, exceptions: dict[str, str]) -> str:
    lower = word.lower()
    if lower in UNCOUNTABLE or lower.endswith(("ware", "wear")):
        return word
    if lower in exceptions:
        return exceptions[lower]
    if lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return word  # already plural: "tights", "white goods"
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def pluralise(phrase: str, exceptions: dict[str, str]) -> str:
    """'dog' -> 'dogs', 'bird of prey' -> 'birds of prey', 'furniture' -> 'furniture'."""
    if phrase.lower() in UNCOUNTABLE:
        return phrase
    if phrase.lower() in exceptions:
        return exceptions[phrase.lower()]
    words = phrase.split(" ")
    head = words.index("of") - 1 if "of" in words[1:] else len(words) - 1
    words[head] = pluralise_word(words[head], exceptions)
    return " ".join(words)


def display_name(lemmas: list[str]) -> str:
    """First lemma, or a longer lemma that extends it ('placental' -> 'placental mammal')."""
    first = lemmas[0]
    for lemma in lemmas[1:]:
        if lemma.lower().startswith(first.lower() + " "):
            return lemma
    return first


def read_sense_ranks(index_noun: Path) -> dict[tuple[str, str], int]:
    """{(lemma, offset): rank}: WordNet lists a lemma's senses most frequent first."""
    ranks = {}
    with open(index_noun, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  "):
                continue
            fields = line.split()
            lemma, n_senses = fields[0].replace("_", " "), int(fields[2])
            for rank, offset in enumerate(fields[-n_senses:]):
                ranks[(lemma, offset)] = rank
    return ranks


def read_tag_counts(wordnet_dir: Path) -> dict[str, int]:
    """{offset: how often any of the synset's words was tagged with this sense} in the
    sense-tagged corpus behind WordNet (``cntlist.rev``: sense key, sense number, count; the
    sense number is the offset's place in ``index.noun``). Basic-level names are the frequent
    ones: "dog" 42, "canine" 0, "carnivore" 0; "building" 50, "structure" 25, "artifact" 1."""
    offsets = {}
    with open(wordnet_dir / "index.noun", encoding="utf-8") as f:
        for line in f:
            if not line.startswith("  "):
                fields = line.split()
                offsets[fields[0]] = fields[-int(fields[2]):]
    counts: dict[str, int] = {}
    with open(wordnet_dir / "cntlist.rev", encoding="utf-8") as f:
        for line in f:
            sense_key, sense_number, count = line.split()
            lemma, lex_sense = sense_key.split("%", 1)
            senses = offsets.get(lemma, []) if lex_sense.startswith("1:") else []  # 1: nouns
            if int(sense_number) <= len(senses):
                offset = senses[int(sense_number) - 1]
                counts[offset] = counts.get(offset, 0) + int(count)
    return counts


def imagenet_wnids() -> list[str]:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_label_name(i) for i in range(info.num_classes())]


def build(wordnet_dir: Path) -> dict:
    synsets = read_synsets(wordnet_dir / "data.noun")
    exceptions = read_plural_exceptions(wordnet_dir / "noun.exc")
    sense_ranks = read_sense_ranks(wordnet_dir / "index.noun")
    tag_counts = read_tag_counts(wordnet_dir)
    wnids = imagenet_wnids()

    # Ancestors (inclusive) of every class, and each synset's depth below the root.
    classes_under: dict[str, set[int]] = {}
    for index, wnid in enumerate(wnids):
        todo, seen = deque([wnid[1:]]), set()
        while todo:
            offset = todo.popleft()
            if offset in seen:
                continue
            seen.add(offset)
            classes_under.setdefault(offset, set()).add(index)
            todo.extend(synsets[offset][1])

    def depth(offset: str, memo: dict[str, int] = {}) -> int:
        if offset not in memo:
            parents = synsets[offset][1]
            memo[offset] = 0 if not parents else 1 + min(depth(p) for p in parents)
        return memo[offset]

    kept = sorted((o for o in classes_under if depth(o) >= MIN_DEPTH), key=lambda o: (depth(o), o))
    position = {o: i for i, o in enumerate(kept)}
    names = {o: display_name(synsets[o][0]) for o in kept}
    phrases = {o: pluralise(names[o], exceptions) for o in kept}
    # Two synsets with the same words ("crane" the bird and the machine): the most frequent
    # sense (the one over most classes, then WordNet's sense order) keeps the plain phrase,
    # the others get their parent's name added.
    senses: dict[str, list[str]] = {}
    for o in kept:
        senses.setdefault(phrases[o].lower(), []).append(o)
    for group in senses.values():
        group.sort(key=lambda o: (-len(classes_under[o]), sense_ranks.get((names[o].lower(), o), 99)))
        for o in group[1:]:
            parent = synsets[o][1][0]
            phrases[o] = f"{phrases[o]} ({display_name(synsets[parent][0])})"

    concepts = []
    for o in kept:
        lemmas = synsets[o][0]
        aliases = {a.lower() for lemma in lemmas for a in (lemma, pluralise(lemma, exceptions))}
        concepts.append({
            "wnid": "n" + o,
            "name": names[o],
            "phrase": phrases[o],
            "aliases": sorted(aliases),
            "depth": depth(o),
            "parents": sorted(position[p] for p in synsets[o][1] if p in position),
            "classes": sorted(classes_under[o]),
            "familiarity": tag_counts.get(o, 0),
        })
    return {
        "source": "WordNet 3.0 noun hierarchy and sense-tag counts (Debian wordnet-base); ImageNet-1k class order from timm",
        "generator": "scripts/build_concepts.py",
        "classes": wnids,
        "concepts": concepts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "visdiff/data/imagenet_concepts.json")
    args = parser.parse_args()
    if not (args.wordnet / "data.noun").is_file():
        raise SystemExit(f"no WordNet data.noun under {args.wordnet}; apt-get install wordnet-base")
    table = build(args.wordnet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(table, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(table['concepts'])} concepts over {len(table['classes'])} classes to {args.out}")


if __name__ == "__main__":
    main()
