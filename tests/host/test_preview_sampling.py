"""Training previews sample without the host's live latent previews: those are sent for the
executing node (Train), and both frontends would add an image preview of their own to it."""
from __future__ import annotations

import importlib

import pytest


@pytest.fixture(scope="module")
def sampling(comfy_host):
    return importlib.import_module(f"{comfy_host.pack.__name__}.nodes.host.sampling")


def test_no_latent_previews_turns_the_hosts_previewer_off_and_restores_it(sampling):
    import latent_preview
    from comfy import latent_formats
    from comfy.cli_args import LatentPreviewMethod, args

    saved = args.preview_method
    args.preview_method = LatentPreviewMethod.Latent2RGB  # as `--preview-method latent2rgb` sets it
    try:
        assert latent_preview.get_previewer("cpu", latent_formats.SD15()) is not None
        with sampling.no_latent_previews():
            assert latent_preview.get_previewer("cpu", latent_formats.SD15()) is None
        assert args.preview_method is LatentPreviewMethod.Latent2RGB
        with pytest.raises(RuntimeError), sampling.no_latent_previews():
            raise RuntimeError("a failed preview")
        assert args.preview_method is LatentPreviewMethod.Latent2RGB, "restored after an error too"
    finally:
        args.preview_method = saved
