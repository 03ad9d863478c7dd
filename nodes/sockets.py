"""Custom socket (data) types of the pack; UPPER_SNAKE so they never clash with the host's."""

HN_DATASET = "HN_DATASET"  # hypernet.data.dataset.Dataset: a light description, images read lazily
HYPERNETWORK = "HYPERNETWORK"  # hypernet.network.module.Hypernetwork
HN_LOSS = "HN_LOSS"  # hypernet.train.trainer loss history (steps, losses, learning rates, events)
HN_TRAIN_OPTIONS = "HN_TRAIN_OPTIONS"  # dict of the Train node's optional settings (nodes/train_options.py)

CATEGORY_DATASET = "hypernetwork/dataset"
CATEGORY_TRAINING = "hypernetwork/training"
CATEGORY_GENERATION = "hypernetwork/generation"
