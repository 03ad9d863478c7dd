"""Shared helpers at the bottom of the core (imports nothing else from `hypernet`).

- `atomic`: temp-file-then-rename writes (`atomic_write_bytes`, `atomic_write_text`, `atomic_path`).
- `atomic_batch`: many small files written at once (`write_many`).
- `names`: the one check for names that become paths (`safe_name`, `safe_relative_name`).
- `paths`: the one containment check for resolved paths (`is_within`).
- `dataclass_io`: strict dict -> dataclass loading for settings (`strict_from_dict`).
"""
