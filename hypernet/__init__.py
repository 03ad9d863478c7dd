"""Pure core of the hypernetwork pack, one sub-package per concern:

- `network`: the hypernetwork (config, layers, attention patch, `.pt`/`.safetensors` files).
- `data`: dataset folders, images, captions, and the dataset editor's core.
- `preprocess`: crops, resizes, buckets and flips of a dataset.
- `tagger`: WD14 tagging (ONNX) and tag captions.
- `train`: the training loop, its settings, schedules, templates, checkpoints and logs.
- `grid`: X/Y grid axis values and images.
- `util`: atomic writes, safe names, strict settings loading (imports nothing else here).

Nothing in this package imports ComfyUI (`comfy`, `folder_paths`, `server`, `nodes`,
`execution`); a test enforces it. Modules use relative imports only, so the package works both
as top-level `hypernet` (tests, benches) and as `<pack>.hypernet` inside ComfyUI.
"""
