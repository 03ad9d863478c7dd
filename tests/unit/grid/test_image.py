"""Grid image: layout sizes, header bands only where labels exist, exact cell pixels, PNG info."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from hypernet.grid.image import (
    PNG_INFO_KEY,
    compose_grid,
    fit_label,
    font_size_for_cell,
    grid_png_info,
    load_font,
    wrap_text,
)
from hypernet.grid.values import parse_axis

W, H = 64, 48


def make_cells(n: int) -> list[Image.Image]:
    """Distinct, non-white, non-black cells with an internal pattern."""
    rng = np.random.default_rng(0)
    cells = []
    for i in range(n):
        arr = rng.integers(60, 200, size=(H, W, 3), dtype=np.uint8)
        arr[0, 0] = (i, 255 - i, 7)
        cells.append(Image.fromarray(arr, "RGB"))
    return cells


def region(img: Image.Image, x: int, y: int, w: int, h: int) -> np.ndarray:
    return np.asarray(img)[y:y + h, x:x + w]


def dark_pixels(arr: np.ndarray) -> int:
    return int((arr.max(axis=-1) < 100).sum())


def test_1x1_without_labels_is_the_cell_itself():
    (cell,) = make_cells(1)
    out = compose_grid([cell], 1, 1)
    assert out.size == (W, H)
    assert np.array_equal(np.asarray(out), np.asarray(cell))
    assert out is not cell


@pytest.mark.parametrize("cols, rows", [(3, 1), (1, 3), (3, 4)])
def test_unlabelled_grid_size_and_cells_exact(cols, rows):
    cells = make_cells(cols * rows)
    out = compose_grid(cells, cols, rows)
    assert out.size == (cols * W, rows * H)
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        assert np.array_equal(region(out, c * W, r * H, W, H), np.asarray(cell)), i


def test_3x4_with_labels_has_bands_with_text_and_exact_cells():
    cols, rows = 3, 4
    cells = make_cells(cols * rows)
    out = compose_grid(cells, cols, rows,
                       col_labels=["Strength: 0.5", "Strength: 0.75", "Strength: 1"],
                       row_labels=["Seed: 1", "Seed: 2", "Seed: 3", "Seed: 4"])
    left = (W * 3) // 4
    top = out.height - rows * H
    assert out.width == left + cols * W
    assert top > 0
    arr = np.asarray(out)
    # Every column header and row label area holds dark text on white.
    for c in range(cols):
        header = region(out, left + c * W, 0, W, top)
        assert dark_pixels(header) > 5, c
    for r in range(rows):
        label = region(out, 0, top + r * H, left, H)
        assert dark_pixels(label) > 5, r
    # The corner is blank white, the background white.
    assert (region(out, 0, 0, left, top) == 255).all()
    assert tuple(arr[0, -1]) == (255, 255, 255)
    for i, cell in enumerate(cells):
        r, c = divmod(i, cols)
        assert np.array_equal(region(out, left + c * W, top + r * H, W, H), np.asarray(cell)), i


def test_only_column_labels_adds_only_top_band():
    cells = make_cells(3)
    out = compose_grid(cells, 3, 1, col_labels=["a", "b", "c"])
    assert out.width == 3 * W
    assert out.height > H
    top = out.height - H
    assert np.array_equal(region(out, 0, top, W, H), np.asarray(cells[0]))


def test_only_row_labels_adds_only_left_band():
    cells = make_cells(3)
    out = compose_grid(cells, 1, 3, row_labels=["a", "b", "c"])
    assert out.height == 3 * H
    assert out.width == W + (W * 3) // 4


def test_all_empty_labels_add_no_band():
    cells = make_cells(2)
    out = compose_grid(cells, 2, 1, col_labels=["", ""], row_labels=[""])
    assert out.size == (2 * W, H)


def test_1x1_with_label_gets_band():
    out = compose_grid(make_cells(1), 1, 1, col_labels=["Seed: 1"])
    assert out.width == W and out.height > H


def test_margin_spacing():
    cells = make_cells(4)
    out = compose_grid(cells, 2, 2, margin=6)
    assert out.size == (2 * W + 6, 2 * H + 6)
    assert np.array_equal(region(out, W + 6, H + 6, W, H), np.asarray(cells[3]))
    assert (region(out, W, 0, 6, H) == 255).all()


def test_titles_add_bands_with_text():
    cells = make_cells(2)
    plain = compose_grid(cells, 2, 1, col_labels=["a", "b"])
    titled = compose_grid(cells, 2, 1, col_labels=["a", "b"], x_title="Strength", y_title="Seed")
    assert titled.height > plain.height and titled.width > plain.width
    y_band = titled.width - plain.width
    assert dark_pixels(region(titled, 0, titled.height - H, y_band, H)) > 3
    assert dark_pixels(region(titled, y_band, 0, titled.width - y_band, titled.height - plain.height)) > 3


def test_long_labels_wrap_to_cell_width():
    cells = make_cells(2)
    short = compose_grid(cells, 2, 1, col_labels=["a", "b"])
    long = compose_grid(cells, 2, 1, col_labels=["a very long label that must wrap onto several lines", "b"])
    assert long.width == short.width
    assert long.height > short.height
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = load_font(12)
    lines = wrap_text(draw, "a very long label that must wrap, averyveryverylongwordwithoutspaces", font, 60)
    assert len(lines) > 2
    # Every line fits except a word with no break point, which is never cut between letters.
    assert lines[-1] == "averyveryverylongwordwithoutspaces"
    assert all(draw.textlength(line, font=font) <= 60 for line in lines[:-1])
    assert "".join(lines).replace(" ", "") == "averylonglabelthatmustwrap,averyveryverylongwordwithoutspaces"


def test_font_size_follows_cell_size():
    assert font_size_for_cell(512, 512) == 40
    assert font_size_for_cell(10, 10) == 8
    small = compose_grid(make_cells(1), 1, 1, col_labels=["Seed"])
    big_cells = [c.resize((W * 4, H * 4)) for c in make_cells(1)]
    big = compose_grid(big_cells, 1, 1, col_labels=["Seed"])
    assert big.height - 4 * H > small.height - H


def test_input_errors():
    cells = make_cells(3)
    with pytest.raises(ValueError, match="need 4"):
        compose_grid(cells, 2, 2)
    odd = cells[:2] + [cells[2].resize((W + 1, H))]
    with pytest.raises(ValueError, match="cell 2 is 65x48"):
        compose_grid(odd, 3, 1)
    with pytest.raises(ValueError, match="column labels: got 2 labels for 3 columns"):
        compose_grid(cells, 3, 1, col_labels=["a", "b"])


def test_rgba_and_grey_cells_are_converted():
    cells = [Image.new("RGBA", (W, H), (10, 20, 30, 255)), Image.new("L", (W, H), 90)]
    out = compose_grid(cells, 2, 1)
    assert out.mode == "RGB"
    assert tuple(np.asarray(out)[0, W]) == (90, 90, 90)


def test_png_info_round_trip(tmp_path):
    axes = [parse_axis("strength", "0.5, 1", name="X"), {"name": "Y", "type": "none", "values": [None]}]
    info = grid_png_info(axes, {"steps": 20, "prompt": "a cät"}, extra_text={"note": "hi"})
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    text = Image.open(io.BytesIO(buffer.getvalue())).text
    payload = json.loads(text[PNG_INFO_KEY])
    assert payload["settings"] == {"steps": 20, "prompt": "a cät"}
    assert payload["axes"][0]["values"] == [0.5, 1.0]
    assert payload["axes"][0]["labels"] == ["Strength: 0.5", "Strength: 1"]
    assert payload["axes"][1]["type"] == "none"
    assert text["note"] == "hi"


def test_png_info_rejects_unserialisable_and_key_clash():
    with pytest.raises(ValueError, match="JSON"):
        grid_png_info([], {"bad": object()})
    with pytest.raises(ValueError, match="override"):
        grid_png_info([], {}, extra_text={PNG_INFO_KEY: "x"})


def test_old_pillow_without_sized_default_font_falls_back(monkeypatch, caplog):
    """Pillow < 10.1: load_default() takes no size and returns the fixed bitmap font."""
    from PIL import ImageFont

    import hypernet.grid.image as grid_image

    if not hasattr(ImageFont, "load_default_imagefont"):
        pytest.skip("this Pillow has no separate bitmap default font to stand in for the old one")

    def old_load_default(*args, **kwargs):
        if args or kwargs:
            raise TypeError("load_default() takes 0 positional arguments")
        return ImageFont.load_default_imagefont()

    monkeypatch.setattr(grid_image.ImageFont, "load_default", old_load_default)
    grid_image.load_font.cache_clear()
    try:
        with caplog.at_level("WARNING"):
            out = compose_grid(make_cells(2), 2, 1, col_labels=["Seed: 1", "Seed: 2"])
        assert "Pillow < 10.1" in caplog.text
        assert dark_pixels(region(out, 0, 0, out.width, out.height - H)) > 3
    finally:
        grid_image.load_font.cache_clear()


def test_labels_never_break_inside_a_word_only_after_separators():
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = load_font(16)
    lines = wrap_text(draw, "demo_style/demo_style-10", font, 60)
    assert lines == ["demo_style/", "demo_style-", "10"]  # was 'demo_st' / 'yle/de' ... before


def test_label_text_shrinks_on_small_cells_until_whole_words_fit():
    big_size, big_lines = fit_label("step 10", font_size_for_cell(512, 512), 512 - 20)
    assert (big_size, big_lines) == (40, ["step 10"])
    small_size, small_lines = fit_label("demo_style/demo_style-10", font_size_for_cell(160, 160), 50)
    assert small_size < font_size_for_cell(160, 160)  # shrunk so 'demo_style/' fits the cell
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    assert all(draw.textlength(line, font=load_font(small_size)) <= 50 for line in small_lines)
    assert "".join(small_lines) == "demo_style/demo_style-10"


def test_checkpoint_axis_grid_has_step_labels_and_the_files_in_the_title():
    from hypernet.grid.values import AxisContext, parse_axis

    files = ["demo_style/demo_style-10.pt", "demo_style/demo_style-20.pt", "other.pt"]
    axis = parse_axis("hypernetwork", "none, demo_style/*.pt", AxisContext(hypernetwork_files=files))
    assert axis.labels == ("none", "step 10", "step 20")
    assert axis.title == "Hypernetwork: demo_style/demo_style-<step>"
    cells = make_cells(3)
    titled = compose_grid(cells, 3, 1, col_labels=list(axis.labels), x_title=axis.title)
    plain = compose_grid(cells, 3, 1, col_labels=list(axis.labels))
    assert titled.height > plain.height  # the legend band above the step labels


def test_checkpoint_axis_lists_the_files_when_their_names_do_not_end_in_the_step():
    from hypernet.grid.values import AxisContext, parse_axis

    files = ["a1111/run-500.pt", "a1111/run-1000.pt"]
    stored = {"a1111/run-500.pt": 499, "a1111/run-1000.pt": 999}  # A1111 saved one step earlier
    axis = parse_axis("hypernetwork", "a1111/*.pt", AxisContext(hypernetwork_files=files, step_lookup=stored.get))
    assert axis.labels == ("step 499", "step 999")
    assert axis.title == "Hypernetwork: step 499 = a1111/run-500; step 999 = a1111/run-1000"
