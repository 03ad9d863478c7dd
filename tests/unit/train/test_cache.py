"""The training caches (`hypernet/train/cache.py`): latent sampling modes, conditioning batches,
and which prompts are encoded how often."""
from __future__ import annotations

import pytest
import torch

from hypernet.train.cache import LatentCache, PromptCache, stack_conditioning
from hypernet.train.templates import CaptionConfig


def entries(count: int = 3, with_std: bool = True) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn((1, 4, 2, 2), generator=gen), torch.full((1, 4, 2, 2), 0.5) if with_std else None)
            for _ in range(count)]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_unknown_mode_names_the_setting_and_the_choices():
    with pytest.raises(ValueError, match="latent_sampling.*once, deterministic or random"):
        LatentCache(entries(), "mean", seed=1)


def test_deterministic_uses_the_posterior_mean():
    data = entries()
    cache = LatentCache(data, "deterministic", seed=1)
    assert len(cache) == 3
    assert torch.equal(cache.batch([2, 0], gen(5)), torch.cat([data[2][0], data[0][0]]))
    assert cache.nbytes == 3 * data[0][0].numel() * 4  # the stds are dropped


def test_once_draws_one_seeded_sample_per_item_and_reuses_it():
    data = entries()
    cache = LatentCache(data, "once", seed=1)
    first = cache.batch([0, 1, 2], gen(1))
    assert torch.equal(first, cache.batch([0, 1, 2], gen(99)))
    assert not torch.equal(first, torch.cat([m for m, _ in data]))
    assert torch.equal(first, LatentCache(data, "once", seed=1).batch([0, 1, 2], gen(2)))
    assert not torch.equal(first, LatentCache(data, "once", seed=2).batch([0, 1, 2], gen(2)))
    assert not torch.equal(first[0] - data[0][0][0], first[1] - data[1][0][0])  # each item gets its own noise


def test_random_draws_a_new_sample_at_every_use():
    data = entries()
    cache = LatentCache(data, "random", seed=1)
    shared = gen(3)
    a, b = cache.batch([0], shared), cache.batch([0], shared)
    assert not torch.equal(a, b)
    assert torch.equal(cache.batch([0], gen(3)), a)
    assert cache.nbytes == 2 * 3 * data[0][0].numel() * 4  # means and stds


@pytest.mark.parametrize("mode", ["once", "deterministic", "random"])
def test_a_vae_without_a_posterior_gives_its_one_latent_in_every_mode(mode):
    data = entries(with_std=False)
    cache = LatentCache(data, mode, seed=1)
    assert torch.equal(cache.batch([1, 2], gen(0)), torch.cat([data[1][0], data[2][0]]))


def test_stack_pads_short_prompts_with_their_last_vector():
    short = torch.arange(6.0).reshape(1, 2, 3)
    long = torch.ones((1, 4, 3))
    conds, pooled = stack_conditioning([(short, torch.zeros((1, 5))), (long, torch.ones((1, 5)))])
    assert conds.shape == (2, 4, 3)
    assert torch.equal(conds[0, 2], short[0, 1]) and torch.equal(conds[0, 3], short[0, 1])
    assert torch.equal(conds[1], long[0])
    assert torch.equal(pooled, torch.cat([torch.zeros((1, 5)), torch.ones((1, 5))]))


def test_stack_has_no_pooled_output_when_any_prompt_lacks_one():
    _, pooled = stack_conditioning([(torch.ones((1, 1, 2)), torch.ones((1, 3))), (torch.ones((1, 1, 2)), None)])
    assert pooled is None


class CountingEncoder:
    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, text: str):
        self.texts.append(text)
        return torch.full((1, 1, 2), float(len(self.texts))), None


CAPTIONS = ["red, blue, green, black", "cat, dog, bird, fish"]


def make_cache(config: CaptionConfig, recent: int = 64) -> tuple[PromptCache, CountingEncoder]:
    encode = CountingEncoder()
    return PromptCache(["a photo of [name], [filewords]"], "hn", CAPTIONS, config, seed=7, encode=encode,
                       recent=recent), encode


def test_fixed_prompts_are_encoded_once_each():
    cache, encode = make_cache(CaptionConfig())
    cache.precompute()
    assert encode.texts == ["a photo of hn, red, blue, green, black", "a photo of hn, cat, dog, bird, fish"]
    for step in range(3):
        conds, _ = cache.conditioning([1, 0], step=step, epoch=step)
        assert conds[:, 0, 0].tolist() == [2.0, 1.0]
    assert len(encode.texts) == 2


def test_fixed_prompts_are_encoded_on_first_use_without_precompute():
    cache, encode = make_cache(CaptionConfig())
    cache.conditioning([1], step=0, epoch=0)
    cache.conditioning([1], step=1, epoch=0)
    assert encode.texts == ["a photo of hn, cat, dog, bird, fish"]


def test_augmented_prompts_are_built_per_step_and_encoded_through_the_recent_cache():
    cache, encode = make_cache(CaptionConfig(shuffle_tags=True), recent=1)
    cache.precompute()
    assert encode.texts == []  # nothing is fixed when tags shuffle
    prompts = [cache.prompt(0, step, 0) for step in range(6)]
    assert len(set(prompts)) > 1
    cache.conditioning([0], step=0, epoch=0)
    cache.conditioning([0], step=0, epoch=0)
    assert encode.texts == [prompts[0]]  # the same text again comes from the cache
    other = next(step for step in range(1, 6) if prompts[step] != prompts[0])
    cache.conditioning([0], step=other, epoch=0)
    cache.conditioning([0], step=0, epoch=0)
    assert encode.texts == [prompts[0], prompts[other], prompts[0]]  # recent=1 evicted the first
