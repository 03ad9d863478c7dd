"""Pure core of the hypernetwork pack: formats, modules, data, training, grids.

Nothing in this package imports ComfyUI (`comfy`, `folder_paths`, `server`, `nodes`,
`execution`); a test enforces it. Modules use relative imports only, so the package works both
as top-level `hypernet` (tests, benches) and as `<pack>.hypernet` inside ComfyUI.
"""
