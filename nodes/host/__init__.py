"""The host adapter: the only code that touches ComfyUI internals, one module per concern.

- `paths`: model folders (hypernetworks, wd14_tagger), input/output/user folders.
- `patches`: a MODEL's attention widths; registering the attention patch (the host's calling convention).
- `training`: the trainable copy of a MODEL (TrainingModel), latents and prompts for training, unloading.
- `sampling`: prompts, empty latents, stock KSampler sampling, VAE decode, sampler/scheduler names.
- `base_model`: the checkpoint a MODEL input was loaded from, hashed (the graph walk is in the core).
- `loaders`: headless runs: the loader's model file, custom-node folders, running a loader node.
- `feedback`: progress bars, Cancel (interrupt), custom UI events.
- `saving`: where images are saved (output folder, temp UI images), PNG metadata switch.
- `upscaling`: running an UPSCALE_MODEL (Preprocess).
- `routes`: HTTP routes and the check of queued prompts.

When ComfyUI's API changes, only this package changes. Node modules import these modules
(`from .host import feedback, paths`), never `comfy`, `folder_paths` or `server` themselves.
"""
