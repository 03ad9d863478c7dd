"""Preprocess: crops, resizes, buckets, flips and captions of a Dataset (A1111 + kohya).

- `preprocess_config`: `PreprocessConfig`, validated on creation.
- `pipeline`: `preprocess` (lazily, or writing PNG + caption files).
- `plan`: which outputs one image yields, as Transforms (`plan_outputs`).
- `focal`, `autosize`, `split`, `buckets`: A1111 autocrop, auto-sized crop, split oversized
  images, kohya aspect-ratio buckets.
- `captions`: the existing-caption action (`combine_caption`).
- `output`: the output folder and its atomic writes (`prepare_output_folder`).
"""
