"""The pack's one registration table: node id -> (display name, module, class).

Pure data with no imports, so tests and docs can read it without ComfyUI. Node ids never change
once released; a row is added only when its node is implemented (no placeholders).

Why it names each class as text instead of holding the class (which would make jump-to-definition
work): every node module imports `nodes.host`, and so `comfy`, when it is imported, while this
table is also read where ComfyUI is not loaded (tests/unit/repo/test_readme_table.py checks the README's
node table against it). The class is `nodes/<module>.py`, class `<class name>`; `nodes/__init__.py`
imports each one when the pack loads, so a wrong row fails at start-up.
"""

CATALOG: list[tuple[str, str, str, str]] = [
    # (node id, display name, module in nodes/, class name)
    ("CreateHypernetwork", "Create Hypernetwork", "create", "CreateHypernetwork"),
    ("ApplyHypernetwork", "Apply Hypernetwork", "apply", "ApplyHypernetwork"),
    ("TrainHypernetwork", "Train Hypernetwork", "train", "TrainHypernetwork"),
    ("HypernetworkTrainingOptions", "Hypernetwork Training Options", "train_options", "HypernetworkTrainingOptions"),
    ("HypernetworkPreviewOptions", "Hypernetwork Preview Options", "train_options", "HypernetworkPreviewOptions"),
    ("HypernetworkXYGrid", "XY Grid", "xygrid", "HypernetworkXYGrid"),
    ("HypernetworkLoadDataset", "Load Dataset", "dataset", "HypernetworkLoadDataset"),
    ("HypernetworkPreprocess", "Preprocess Images", "preprocess", "HypernetworkPreprocess"),
    ("HypernetworkWD14Tag", "WD14 Tagger", "tagger", "HypernetworkWD14Tag"),
]

CATEGORY_ROOT = "hypernetwork"
