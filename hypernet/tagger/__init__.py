"""WD14 tagger: finding, downloading and running the ONNX taggers, and writing tag captions.

onnxruntime is imported only when a model is built (`model.import_onnxruntime`).

- `pipeline`: `tag_images`, `tag_image_files` (true batches, next batch prepared ahead).
- `files`: installed taggers (`find_taggers`, `resolve_tagger`); `download`: `download_tagger`.
- `model`: ONNX session with provider fallback and a per-path cache (`load_tagger`, `unload`).
- `preprocess`: the reference image preprocessing (`preprocess_image`).
- `tags`: tag table and probability-to-tags selection (`load_tag_table`, `select_tags`).
- `captions`: caption files written next to images (`write_caption`, `merge_caption`).
- `dataset`: tagging a whole Dataset, its captions and the node's report (`tag_dataset`,
  `captioned_dataset`, `format_report`).
- `errors`: the named errors (`TaggerModelError`, `TaggerFilesMissingError`, ...).
"""
