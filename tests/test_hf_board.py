"""The Hugging Face board (issue 30): the tiny configs come from each config's own names,
a model that cannot take a size is refused with the library's complaint, each architecture
runs in a capped process of its own, and every row gets a verdict a user can act on."""

import json
import time
from pathlib import Path

import pytest
import torch
from transformer_spec.properties.harness.known import KnownFailure
from transformer_spec.properties.reports import board as B
from transformer_spec.properties.targets.levels import ModelSpec, Unsupported

from transformer_spec.cli import main

ROOT = Path(__file__).resolve().parent.parent
HF = pytest.mark.skipif(
    __import__("importlib").util.find_spec("transformers") is None,
    reason="the hf extra (transformers) is not installed",
)


def _spec(kind: str = "decoder_only", **changes: object) -> ModelSpec:
    sizes: dict[str, object] = dict(
        kind=kind, vocab_size=24, d_model=16, n_heads=2, d_ff=32, n_layers=2, max_len=16
    )
    sizes.update(positional=True, dtype=torch.float32, device=torch.device("cpu"), seed=0)
    sizes.update(changes)
    return ModelSpec(**sizes)  # type: ignore[arg-type]


# ---- the tiny configs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("hidden_size", "d_model"),
        ("n_embd", "d_model"),
        ("num_key_value_heads", "kv_heads"),
        ("swa_num_attention_heads", "n_heads"),
        ("moe_intermediate_size", "d_ff"),
        ("shared_expert_intermediate_size", "d_ff"),
        ("dff", "d_ff"),
        ("num_decoder_layers", "n_layers"),
        ("qk_rope_head_dim", "half_d_k"),
        ("v_head_dim", "d_k"),
        ("n_routed_experts", "experts"),
        ("num_experts_per_tok", "experts_per_token"),
        ("sliding_window", "window"),
        ("attention_window", "max_len"),
        ("n_positions", "max_len"),
        ("expansion_ratio", "ratio"),
        ("decoder_vocab_size", "vocab"),
        ("layer_norm_eps", None),
        ("hidden_size_per_layer_input", None),
    ],
)
def test_a_config_parameter_takes_the_size_its_name_says(name: str, size: str | None) -> None:
    from transformer_spec.properties.targets.adapters.hf_config import size_of

    assert size_of(name) == size


@HF
def test_an_moe_config_is_tiny_in_every_size_it_names() -> None:
    from transformer_spec.properties.targets.adapters.hf_config import tiny_config
    from transformers import MixtralConfig

    config = tiny_config("MixtralForCausalLM", MixtralConfig, _spec(), positions=16, decoder=True)
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (16, 32, 2)
    assert (config.num_local_experts, config.num_experts_per_tok) == (4, 2)
    assert config.num_key_value_heads == 2 and config.max_position_embeddings == 16
    assert config.attention_dropout == 0.0 and config.pad_token_id == 0


@HF
def test_a_hybrid_keeps_an_attention_layer_among_its_tiny_layers() -> None:
    """Qwen3-Next's pattern starts with three linear-attention layers; cut to its first two
    it would have no attention layer, and the library cannot run such a model."""
    from transformer_spec.properties.targets.adapters.hf_config import tiny_config
    from transformers import Qwen3NextConfig

    config = tiny_config(
        "Qwen3NextForCausalLM", Qwen3NextConfig, _spec(), positions=16, decoder=True
    )
    assert config.layer_types == ["linear_attention", "full_attention"]


@HF
def test_an_encoder_family_used_as_a_causal_lm_is_built_as_a_decoder() -> None:
    from transformer_spec.properties.targets.adapters import hf

    model = hf.build("BertLMHeadModel", _spec())
    assert model.net.config.is_decoder


@HF
def test_sizes_a_config_refuses_are_a_one_line_refusal() -> None:
    from transformer_spec.properties.targets.adapters import hf

    with pytest.raises(Unsupported) as err:
        hf.build("LlamaForCausalLM", _spec(d_model=18, n_heads=4))  # 18 heads-wide? no
    assert "LlamaForCausalLM" in str(err.value) and "\n" not in str(err.value)


@HF
def test_a_float64_failure_is_not_taken_for_a_size_refusal() -> None:
    """Mixtral runs in float32 at these sizes and not in float64: the build is handed to the
    properties (which fail on the library's bug), not refused."""
    from transformer_spec.properties.targets.adapters import hf

    model = hf.build("MixtralForCausalLM", _spec(dtype=torch.float64))
    with pytest.raises(RuntimeError, match="Float32, BFloat16 or Float16"):
        model.logits(torch.tensor([[1, 5]]))


# ---- verdicts -----------------------------------------------------------------------------


def _row(*outcomes: tuple[str, str], problem: str = "") -> B.Row:
    results = [
        {"property": p, "outcome": o, "reason": "", "message": "boom", "seconds": 0.1}
        for p, o in outcomes
    ]
    return B.Row("llama", "LlamaForCausalLM", "decoder_only", results, problem=problem)


KNOWN = [
    KnownFailure("hf:LlamaForCausalLM/model.matches_float64", "no float64 kernel; repro.py", 1),
    KnownFailure("hf:LlamaForCausalLM/build", "its default config cannot build; repro.py", 2),
]


@pytest.mark.parametrize(
    ("row", "known", "verdict", "why"),
    [
        (_row(("a", "pass"), ("b", "not_applicable")), [], B.PASS, "1 of 1"),
        (_row(("a", "convention")), [], B.CONVENTIONS, "1 of 1"),
        (_row(("model.matches_float64", "fail")), KNOWN, B.REAL_BUG, "no float64 kernel"),
        (_row(("model.matches_float64", "fail")), [], B.FAIL, "model.matches_float64: boom"),
        (_row(("a", "fail"), ("model.matches_float64", "fail")), KNOWN, B.FAIL, "a: boom"),
        (_row(problem="no width"), [], B.REFUSED, "no width"),
        (_row(problem="cannot build"), KNOWN, B.REAL_BUG, "default config cannot build"),
        (_row(problem=f"{B.OWN_BUILD} (KeyError)"), [], B.FAIL, "(KeyError)"),
    ],
)
def test_each_row_gets_the_verdict_its_results_give(
    row: B.Row, known: list[KnownFailure], verdict: str, why: str
) -> None:
    got, because = B.verdict(row, known, "float32")
    assert got == verdict and why in because


def test_a_class_that_refuses_every_property_is_refused_with_its_reason() -> None:
    row = _row(("a", "not_applicable"))
    row.results[0]["reason"] = "the library refused every example: X: cannot run"
    assert B.verdict(row, [], "float32") == (B.REFUSED, row.results[0]["reason"])


# ---- the capped process -------------------------------------------------------------------


def _fallback() -> B.Row:
    return B.Row("x", "X", "decoder_only")


def test_a_row_comes_back_from_its_own_process() -> None:
    def work() -> B.Row:
        row = _fallback()
        row.results = [{"property": "a", "outcome": "pass"}]
        return row

    row = B.isolated(work, _fallback(), B.Caps(memory_gb=4, seconds=60))
    assert row.results == [{"property": "a", "outcome": "pass"}] and not row.problem
    assert row.memory_mb > 0


def test_an_architecture_over_the_memory_cap_is_stopped_with_the_reason() -> None:
    def work() -> B.Row:
        torch.ones(3 * 2**30 // 4)  # 3 GB of float32, over a 2 GB cap
        return _fallback()

    row = B.isolated(work, _fallback(), B.Caps(memory_gb=2, seconds=60))
    assert "crashed" in row.problem and "memory" in row.problem.lower(), row.problem


def test_an_architecture_over_the_time_cap_is_stopped_with_the_reason() -> None:
    def work() -> B.Row:
        time.sleep(30)
        return _fallback()

    row = B.isolated(work, _fallback(), B.Caps(memory_gb=4, seconds=1))
    assert row.problem == "did not finish within the 1 s time cap" and row.seconds < 10


# ---- the command --------------------------------------------------------------------------


@HF
def test_the_board_runs_shards_and_merges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two shards of two architectures, one property, merged into one board."""
    common = ["--property", "model.output_shape", "--jobs", "1", "gpt2", "bloom"]
    for i in (1, 2):
        code = main(["board", *common, "--shard", f"{i}/2", "--json", str(tmp_path / f"{i}.json")])
        assert code == 0
    merged = tmp_path / "board.md"
    assert (
        main(
            ["merge", str(tmp_path / "1.json"), str(tmp_path / "2.json"), "--markdown", str(merged)]
        )
        == 0
    )
    text = merged.read_text()
    assert "| bloom | `BloomForCausalLM` | decoder_only | pass | 1 |" in text
    assert "| gpt2 | `GPT2LMHeadModel` | decoder_only | pass | 1 |" in text
    rows = json.loads((tmp_path / "1.json").read_text())["board"]
    assert [r["architecture"] for r in rows] == ["bloom"]


def test_a_bad_board_option_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["board", "--memory-cap", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("transformer-spec board: --memory-cap 0") and err.count("\n") == 1


# ---- false alarms of ours, fixed by their cause -------------------------------------------


def test_rare_tokens_are_pooled_into_groups_that_expect_enough_draws() -> None:
    """The chi-square test pooled every bin expecting fewer than 5 draws into one group that
    could expect far fewer (an unbiased sampler failed at p = 7e-9). Now every group expects
    at least _MIN_EXPECTED draws, and unbiased samplers over distributions with many rare
    tokens (softmax(6 z)) are not rejected."""
    from transformer_spec.properties.checks.generation import (
        _MIN_EXPECTED,
        _chi_square_p_value,
        _pooled,
    )

    g = torch.Generator().manual_seed(0)
    worst = 1.0
    for _ in range(300):
        probs = torch.softmax(6 * torch.randn(24, generator=g, dtype=torch.float64), -1)
        draws = torch.multinomial(probs, 2000, replacement=True, generator=g)
        counts = torch.bincount(draws, minlength=24).double()
        _, expected = _pooled(counts, probs * counts.sum())
        assert min(expected) >= _MIN_EXPECTED or len(expected) == 1
        worst = min(worst, _chi_square_p_value(counts, probs))
    assert worst > 1e-6


@HF
def test_a_rotary_only_encoder_is_order_sensitive() -> None:
    """ModernBERT (rotary positions, Hugging Face's small initialisation) moves its logits by
    about 1e-6 when its tokens are rotated: under float32's bound, far above float64's."""
    from transformer_spec.properties.checks import load_all
    from transformer_spec.properties.harness.loading import load_target
    from transformer_spec.properties.harness.registry import Context
    from transformer_spec.properties.harness.runner import run_property
    from transformer_spec.properties.harness.tolerance import tolerance_for

    cpu = torch.device("cpu")
    ctx = Context(
        load_target("hf:ModernBertForMaskedLM"),
        cpu,
        torch.float32,
        tolerance_for(torch.float32, cpu),
    )
    result = run_property(
        load_all()["model.encoder_only.order_sensitive"], ctx, profile="ci", seed=0
    )
    assert result.outcome == "pass", result.message


@HF
def test_check_runs_the_classes_that_load_and_names_the_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["check", "hf:GPT2LMHeadModel", "hf:NoSuchModel", "--property", "model.output_shape"]
    assert main([*argv, "--profile", "quick", "--jobs", "1"]) == 2
    out, err = capsys.readouterr()
    assert "'NoSuchModel' is not a transformers language-model class" in err and "(not run)" in err
    assert "PASS  model.output_shape" in out and "1 target(s) could not be loaded" in out


@HF
def test_a_class_its_own_default_config_cannot_build_is_told_apart() -> None:
    """Dbrx's default config cannot build its own model (docs/repro/hf_default_configs.py):
    the board names the library's error; Llama's builds, and gives no error."""
    assert B._default_build_error("DbrxForCausalLM") != ""
    assert B._default_build_error("LlamaForCausalLM") == ""


@HF
def test_a_package_missing_here_is_not_the_librarys_bug() -> None:
    """Gemma 3n's vision tower needs timm: without it the class is refused with the import
    error, never reported as a class transformers cannot build."""
    if __import__("importlib").util.find_spec("timm") is not None:
        pytest.skip("timm is installed here")
    assert B._default_build_error("Gemma3nForConditionalGeneration") == ""


@pytest.mark.parametrize(
    ("refusal", "own"),
    [
        ("cannot be built at d_model=16 (KeyError: 'full_attention')", True),
        ("cannot be built at d_model=16 (ValueError: axial factors (64, 192) sum to 16)", False),
    ],
)
def test_the_librarys_own_build_is_blamed_only_for_its_own_error(refusal: str, own: bool) -> None:
    """A class refused at every tiny size is the library's own build failure only when the
    tiny builds fail with the error its default config gives (Dbrx, Cohere Compass); refused
    for another reason (Reformer's axial positions), it stays refused, with that reason."""
    row = _row(("a", "not_applicable"))
    row.results[0]["reason"] = f"the library refused every example: X: {refusal}"
    assert B._refused_for("KeyError: 'full_attention'", row) is own


def test_known_failures_are_written_only_for_causes_with_a_reproduction() -> None:
    """tools/hf_known.py writes an entry per failing property whose cause it knows (by its
    message or its class), `hf:CLASS/build` for a class its default config cannot build, and
    nothing for a failure it does not know: that one stays a FAIL on the board."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hf_known", ROOT / "tools" / "hf_known.py")
    assert spec is not None and spec.loader is not None
    known = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(known)

    def row(name: str, message: str, problem: str = "") -> dict[str, object]:
        result = {"property": "p.q", "outcome": "fail", "message": message}
        return {"class_name": name, "problem": problem, "results": [result]}

    moe = "Expected mat_a to be Float32, BFloat16 or Float16 matrix, got Double"
    board = {
        "board": [
            row("MixtralForCausalLM", f"RuntimeError: {moe}"),
            row("XGLMForCausalLM", "anything"),
            row("LlamaForCausalLM", "a failure nobody explained"),
            {"class_name": "DbrxForCausalLM", "problem": f"{B.OWN_BUILD} (x)", "results": []},
        ]
    }
    lines = known.entries(board)
    assert [line.split()[0] for line in lines] == [
        *(line.split()[0] for line in known.OTHER_CELLS),
        "hf:MixtralForCausalLM/p.q",
        "hf:XGLMForCausalLM/p.q",
        "hf:DbrxForCausalLM/build",
    ]
    repro = (ROOT / "docs" / "repro" / "hf_default_configs.py").read_text()
    assert all(f'"{name}"' in repro for name in known.BUILD_CLASSES)
    for line in lines:  # each reason names a reproduction that exists
        path = line.split("docs/repro/")[1].split()[0]
        assert (ROOT / "docs" / "repro" / path).is_file()


def test_every_committed_known_failure_names_a_reproduction_that_exists() -> None:
    """docs/hf-known.txt turns FAIL rows into `real bug`: each entry must point at the
    stand-alone reproduction that shows the bug, and the board must name no FAIL left."""
    from transformer_spec.properties.harness.known import load_known_failures

    entries = load_known_failures(str(ROOT / "docs" / "hf-known.txt"))
    assert len(entries) > 100
    for entry in entries:
        path = entry.reason.split("docs/repro/")[1].split()[0]
        assert (ROOT / "docs" / "repro" / path).is_file(), entry
    board = (ROOT / "docs" / "hf-board.md").read_text()
    assert "| **FAIL** |" not in board and ", 0 unexplained failures)" in board


# ---- beyond the notes: grouped key/value heads, windows, relative positions (issue 32) ----


@HF
def test_a_spec_asking_for_grouped_heads_and_a_window_switches_them_on_in_every_layer() -> None:
    """Qwen2 keeps its window off unless use_sliding_window and max_window_layers say so;
    Gemma 2 alternates windowed and full layers. Asked for a window, every layer has it."""
    from transformer_spec.properties.targets.adapters.hf_config import tiny_config
    from transformers import Gemma2Config, Qwen2Config

    spec = _spec(n_kv_heads=1, window=3)
    qwen = tiny_config("Qwen2ForCausalLM", Qwen2Config, spec, positions=16, decoder=True)
    assert (qwen.num_key_value_heads, qwen.sliding_window) == (1, 3)
    assert qwen.layer_types == ["sliding_attention"] * 2
    gemma = tiny_config("Gemma2ForCausalLM", Gemma2Config, spec, positions=16, decoder=True)
    assert gemma.layer_types == ["sliding_attention"] * 2 and gemma.sliding_window == 3


@HF
def test_a_model_without_a_window_or_grouped_heads_refuses_to_be_built_with_them() -> None:
    from transformer_spec.properties.targets.adapters import hf

    with pytest.raises(Unsupported, match="no sliding window"):
        hf.build("LlamaForCausalLM", _spec(window=3))
    with pytest.raises(Unsupported, match="no key/value head count"):
        hf.build("GPT2LMHeadModel", _spec(n_kv_heads=1))


@HF
def test_only_a_model_with_relative_positions_alone_is_built_for_the_shift_property() -> None:
    from transformer_spec.properties.targets.adapters import hf

    with pytest.raises(Unsupported, match="absolute position table"):
        hf.build("GPT2LMHeadModel", _spec(relative_positions=True))
    with pytest.raises(Unsupported, match="not even"):  # GPT-NeoX rotates d_k / 4 channels
        hf.build("GPTNeoXForCausalLM", _spec(n_heads=4, relative_positions=True))
    llama = hf.build("LlamaForCausalLM", _spec(relative_positions=True))
    tokens = torch.tensor([[5, 6, 7]])
    moved = llama.logits_at(tokens, 5)
    assert moved is not None
    torch.testing.assert_close(moved, llama.logits_at(tokens, 0), atol=1e-5, rtol=0)


@HF
def test_a_model_whose_built_layers_apply_no_rotary_is_refused_relative_positions() -> None:
    """Cohere 2's full-attention layers take no positions, and a one-layer Cohere 2 is cut
    to its first full layer: its rotary frequencies are there, unused. Two layers keep a
    windowed (rotary) layer before it. A bfloat16 build is judged on a float32 copy."""
    from transformer_spec.properties.targets.adapters import hf

    for dtype in (torch.float32, torch.bfloat16):
        with pytest.raises(Unsupported, match="apply no rotary positions") as refused:
            hf.build("Cohere2ForCausalLM", _spec(n_layers=1, dtype=dtype, relative_positions=True))
        assert not refused.value.always  # another size may keep a rotary layer
    hf.build("Cohere2ForCausalLM", _spec(n_layers=2, relative_positions=True))
    hf.build("LlamaForCausalLM", _spec(n_layers=1, dtype=torch.bfloat16, relative_positions=True))
