"""Sinusoidal encodings at known positions, in both layouts of the notes."""

import math

import numpy as np
import pytest
import torch
import transformer_spec.reference as R


def test_interleaved_values_at_known_positions() -> None:
    pe = R.sinusoidal_interleaved(3, 8)
    assert pe[0].tolist() == [0.0, 1.0] * 4  # sin 0 on even channels, cos 0 on odd
    assert pe[1, 0].item() == math.sin(1.0) and pe[1, 1].item() == math.cos(1.0)
    w = 1 / 10000 ** (2 / 8)  # pair i = 1
    assert pe[2, 2].item() == pytest.approx(math.sin(2 * w), abs=1e-15)
    assert pe[2, 3].item() == pytest.approx(math.cos(2 * w), abs=1e-15)
    assert pe[2, 7].item() == pytest.approx(math.cos(2 / 10000 ** (6 / 8)), abs=1e-15)


def test_interleaved_odd_width_ends_on_a_sine() -> None:
    pe = R.sinusoidal_interleaved(4, 5)
    assert pe.shape == (4, 5)
    assert pe[3, 4].item() == pytest.approx(math.sin(3 / 10000 ** (4 / 5)), abs=1e-15)


def _t2t_numpy(length: int, channels: int, start_index: int = 0) -> np.ndarray:
    """get_timing_signal_1d from the notes, transcribed to numpy."""
    position = np.arange(length, dtype=np.float64) + start_index
    n = channels // 2
    log_inc = math.log(1.0e4 / 1.0) / (n - 1)
    inv = 1.0 * np.exp(np.arange(n, dtype=np.float64) * -log_inc)
    scaled = position[:, None] * inv[None, :]
    signal = np.concatenate([np.sin(scaled), np.cos(scaled)], axis=1)
    return np.pad(signal, [[0, 0], [0, channels % 2]])


@pytest.mark.parametrize(("length", "channels", "start"), [(20, 512, 0), (7, 9, 0), (5, 4, 3)])
def test_concat_layout_matches_tensor2tensor(length: int, channels: int, start: int) -> None:
    ours = R.sinusoidal_concat(length, channels, start_index=start).numpy()
    np.testing.assert_allclose(ours, _t2t_numpy(length, channels, start), rtol=0, atol=1e-12)
    if channels % 2:
        assert not ours[:, -1].any()


def test_concat_layout_rejects_fewer_than_four_channels() -> None:
    with pytest.raises(ValueError, match="channels"):
        R.sinusoidal_concat(3, 3)


@pytest.mark.parametrize("kind", ["sinusoidal", "sinusoidal_concat"])
def test_encoding_is_bounded_and_shift_is_a_rotation(kind: str) -> None:
    d = 16
    pe = R.PositionalEncoding(kind, 64, d).table  # type: ignore[arg-type]
    assert pe is not None and bool((pe.abs() <= 1).all())
    # PE(pos + k) = rotation by k*w of each (sin, cos) pair of PE(pos).
    n = d // 2
    if kind == "sinusoidal":
        w = 1 / 10000 ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
        sin, cos = pe[:, 0::2], pe[:, 1::2]
    else:
        w = torch.exp(torch.arange(n, dtype=torch.float64) * -math.log(1e4) / (n - 1))
        sin, cos = pe[:, :n], pe[:, n:]
    k = 5
    rot_sin = sin[:-k] * torch.cos(k * w) + cos[:-k] * torch.sin(k * w)
    rot_cos = cos[:-k] * torch.cos(k * w) - sin[:-k] * torch.sin(k * w)
    torch.testing.assert_close(rot_sin, sin[k:], rtol=0, atol=1e-12)
    torch.testing.assert_close(rot_cos, cos[k:], rtol=0, atol=1e-12)


def test_encoding_is_added_with_an_offset() -> None:
    enc = R.PositionalEncoding("sinusoidal", 10, 6)
    x = torch.zeros(2, 3, 6)
    assert enc.table is not None
    torch.testing.assert_close(enc(x, offset=4), enc.table[4:7].float().expand(2, 3, 6))
    assert enc(x).dtype == torch.float32


def test_learned_positions_are_parameters_and_none_adds_nothing() -> None:
    # spec: PE-LEARNED
    learned = R.PositionalEncoding("learned", 10, 6)
    assert [n for n, _ in learned.named_parameters()] == ["table"]
    none = R.PositionalEncoding("none", 10, 6)
    x = torch.randn(1, 3, 6)
    assert torch.equal(none(x), x)


def test_sinusoidal_table_has_no_parameters() -> None:
    # spec: PE-FIXED
    assert not list(R.PositionalEncoding("sinusoidal", 10, 6).parameters())


def test_concat_layout_defaults_and_timescales() -> None:
    assert torch.equal(R.sinusoidal_concat(5, 8), R.sinusoidal_concat(5, 8, start_index=0))
    # min_timescale 2, max 50, 4 frequencies: 2 * (50 / 2) ** (-k / 3)
    inv = 2.0 * (50.0 / 2.0) ** (-torch.arange(4, dtype=torch.float64) / 3)
    scaled = torch.arange(5, dtype=torch.float64)[:, None] * inv
    want = torch.cat([scaled.sin(), scaled.cos()], dim=1)
    got = R.sinusoidal_concat(5, 8, min_timescale=2.0, max_timescale=50.0)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_a_learned_table_starts_small() -> None:
    torch.manual_seed(0)
    table = R.PositionalEncoding("learned", max_len=64, d_model=32).table
    assert table is not None and 0.005 < float(table.detach().std()) < 0.02
