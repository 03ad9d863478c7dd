"""Datasets: scanning image folders with their captions, and the dataset editor's core.

- `dataset`: `Dataset` / `DatasetItem` (the HN_DATASET socket), `Transform`s applied lazily.
- `load`: LoadDataset's folder scan (`load_dataset`, `format_load_report`).
- `images`, `images_png`: header reads and decoding to RGB (`read_header`, `load_rgb`).
- `captions_io`: caption files and A1111's caption-from-file-name (`read_caption_file`).
- `folder_walk`: the one deterministic folder walk (`walk_sorted`).
- `fingerprint`: a cheap fingerprint of a folder, so ComfyUI rescans only on change
  (`folder_fingerprint`).
- `preview`: the first items as a ComfyUI IMAGE batch (`preview_tensor`).
- Dataset editor: `roots` (which folders it may open), `index` (`scan_folder`, filters, tag
  counts), `edit` (tag operations on captions), `sidecar` (non-destructive edits file),
  `caption_save` (`save`, restore points), `thumbs` (`thumbnail_jpeg`).
"""
