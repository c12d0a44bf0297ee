"""The classifier-failure recipe, offline, on the shipped example images.

A toy classifier (the offline scorer: does an image look more like "musical instruments" or
like "tools"?) labels the 24 images of ``examples/a`` (music) and ``examples/b`` (tools). This
writes ``examples/failures.csv`` (path, label, predicted, correct); then, per true label,
``visdiff sweep`` asks what the misclassified images have in common against the correct ones:

    python examples/failure_recipe.py
    visdiff sweep examples/failures.csv --by label --group-col correct --group-a False --group-b True

With a real classifier, write the same table from its predictions (any number of classes).
"""

from pathlib import Path

import pandas as pd

import visdiff
from visdiff.cache_root import CacheRoot
from visdiff.embeddings.scoring import Scoring

HERE = Path(__file__).resolve().parent
LABELS = {"a": "musical instruments", "b": "tools"}


def main() -> None:
    scoring = Scoring("offline", cache=CacheRoot.resolve(), show_progress=False)
    rows = []
    for folder, label in LABELS.items():
        image_set = visdiff.load_image_set(HERE / folder)
        scores = scoring.score(image_set, list(LABELS.values()))
        for item, row in zip(image_set.items, scores, strict=True):
            predicted = list(LABELS.values())[int(row.argmax())]
            rows.append({"path": str(item.path.relative_to(HERE)), "label": label, "predicted": predicted,
                         "correct": predicted == label})
    table = pd.DataFrame(rows)
    table.to_csv(HERE / "failures.csv", index=False)
    print(table.groupby("label")["correct"].value_counts().to_string())
    print(f"wrote {HERE / 'failures.csv'}")


if __name__ == "__main__":
    main()
