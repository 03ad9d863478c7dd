"""Shared helpers at the bottom of the core (imports nothing else from `hypernet`).

- `atomic`: temp-file-then-rename writes (`atomic_write_bytes`, `atomic_write_text`, `atomic_path`).
- `atomic_batch`: many small files written at once (`write_many`).
- `names`: the one check for names that become paths (`safe_name`, `safe_relative_name`).
- `paths`: the one resolution of a folder the user typed (`user_folder`) and the one containment
  check for resolved paths (`is_within`).
- `caption_tags`: the one split of a caption into tags (`split_tags`, `join_tags`).
- `dataclass_io`: strict dict -> dataclass loading for settings (`strict_from_dict`).
"""
