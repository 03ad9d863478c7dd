"""Training: the loop, its settings, schedules, prompt templates, caches, checkpoints and logs.

- `settings`: every training setting declared once (`SETTINGS`): node inputs, validation, legacy layouts.
- `config`: `TrainConfig`, the validated settings saved next to the checkpoints (fields from `settings`).
- `precision`: which dtype the model forward trains in (`resolve_training_dtype`, "auto").
- `trainer`: the training loop (`Trainer`, `TrainHooks`, `TrainResult`).
- `schedule`: learning-rate schedules as pure functions (`parse_schedule`, `StepSchedule`).
- `templates`: A1111 prompt templates and tag augmentation (`fill_template`, `derive_seed`).
- `batches`: which items go into which micro-batch (`BatchPlan`).
- `cache`: latent and prompt caches (`LatentCache`, `PromptCache`).
- `checkpoints`: the run folder, checkpoints and resume (`RunFolder`, `Resumable`).
- `final_file`: may the run write its final `<name>.pt` (`FinalFileGuard`).
- `log`: the loss history and A1111's loss CSV (`LossHistory`); `loss_plot`: `render_loss_plot`.
- `preview`: preview settings, prompt and seeds (`PreviewSettings`, `default_preview_prompt`, `PreviewSeeds`).
"""
