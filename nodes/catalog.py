"""The pack's one registration table: node id -> (display name, module, class).

Pure data with no imports, so tests and docs can read it without ComfyUI. Node ids never change
once released; a row is added only when its node is implemented (no placeholders).
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
