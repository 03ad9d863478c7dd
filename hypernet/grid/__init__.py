"""X/Y grid: axis values in A1111's syntax and the composed grid image.

- `values`: typed axis values, validated up front (`AxisValues`, `split_values`).
- `plan`: the settings of every cell from the base settings and two axes (`plan_cells`).
- `image`: the labelled grid image and its PNG metadata (`compose_grid`, `grid_png_info`).
"""
