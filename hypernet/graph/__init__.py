"""The workflow graph as plain data: ComfyUI API-prompt dicts (`{node id: {"class_type", "inputs"}}`).

- `model_source`: which loader node and file a MODEL input comes from (`trace_model_loader`,
  `LoaderFile`); finding that file in the model folders is the host adapter's job.
"""
