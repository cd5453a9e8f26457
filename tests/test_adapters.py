"""Third-party targets: torch SDPA, torch.nn's modules and layers, Hugging Face models.

Each family passes its properties (conventions shown as such), the properties still fail
when an adapter declares the wrong convention (they can fail on code nobody here wrote),
the fast paths named are the ones that run, and a missing `hf` extra is a clear exit 2."""

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor
from transformer_spec.properties import Target
from transformer_spec.properties.checks import load_all
from transformer_spec.properties.checks.model_cases import _must_differ
from transformer_spec.properties.harness.known import KnownFailure, known_reason
from transformer_spec.properties.harness.loading import load_target
from transformer_spec.properties.harness.registry import Context
from transformer_spec.properties.harness.results import Result
from transformer_spec.properties.harness.runner import run_property
from transformer_spec.properties.harness.tolerance import tolerance_for
from transformer_spec.properties.targets.conventions import Conventions
from transformer_spec.properties.targets.levels import Unsupported

from transformer_spec.cli import main

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]
HF = pytest.mark.skipif(
    __import__("importlib").util.find_spec("transformers") is None,
    reason="the hf extra (transformers) is not installed",
)


def outcome(
    target: Target | str, pid: str, dtype: torch.dtype = torch.float32, seed: int = 0
) -> Result:
    t = load_target(target) if isinstance(target, str) else target
    ctx = Context(t, CPU, dtype, tolerance_for(dtype, CPU))
    return run_property(load_all()[pid], ctx, profile="ci", seed=seed)


def redeclared(name: str, **conventions: object) -> Target:
    """The target with some conventions declared otherwise, on purpose (and so explained)."""
    t = load_target(name)
    explained = {**t.conventions.explanations, **dict.fromkeys(conventions, "declared wrongly")}
    changed = dataclasses.replace(t.conventions, explanations=explained, **conventions)  # type: ignore[arg-type]
    return dataclasses.replace(t, conventions=changed)


@pytest.mark.parametrize(
    ("name", "pid"),
    [
        ("torch-sdpa-math", "attention.matches_float64_formula"),
        ("torch-sdpa-flash-float", "masking.padding_and_causal_combine"),
        ("torch-mha", "multihead.equals_concat_of_heads_then_W_O"),
        ("torch-mha-seq-first-averaged", "multihead.causal_no_future_leak"),
        ("torch-layers-fast", "layers.residual_path"),
        ("torch-layers-slow", "layers.decoder_causal"),
        ("torch-transformer-nested", "model.encoder_only.padding_has_no_effect"),
        ("torch-transformer-fast", "model.encoder_decoder.causal_no_future_leak"),
        pytest.param("hf-gpt2", "model.decoder_only.incremental_matches_full", marks=HF),
        pytest.param("hf-bart", "model.encoder_decoder.incremental_matches_full", marks=HF),
        pytest.param("hf-bert", "model.encoder_only.permutation_equivariant", marks=HF),
    ],
)
def test_a_conforming_library_passes(name: str, pid: str) -> None:
    r = outcome(name, pid)
    assert r.outcome == "pass", (r.message, r.counterexample)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_saturated_encoder_still_shows_its_dependencies(dtype: torch.dtype) -> None:
    """Seed 7 of the false-alarm study draws an nn.TransformerEncoder whose softmax saturates:
    replacing token 3 moves the logits at 2 by 1.67e-13 in float64, below the invariance
    bound. It depends on token 3 all the same, and must not be failed for it."""
    r = outcome("torch-transformer-slow", "model.encoder_only.all_to_all", dtype, seed=7)
    assert r.outcome == "pass", (r.message, r.counterexample)


def _ctx(deterministic: bool) -> Context:
    t = redeclared("reference-math", deterministic=deterministic)
    return Context(t, CPU, torch.float64, tolerance_for(torch.float64, CPU))


def test_a_dependency_in_float64_is_any_difference_unless_declared_nondeterministic() -> None:
    before = torch.ones(2, 3, dtype=torch.float64)
    after = before.clone()
    after[1, 2] += 1e-13  # far under the invariance bound
    _must_differ(_ctx(True), before, after, "logits")
    with pytest.raises(AssertionError, match="unchanged, bit for bit"):
        _must_differ(_ctx(True), before, before.clone(), "logits")
    # run-to-run noise of a nondeterministic target could fake such a difference
    with pytest.raises(AssertionError, match="not more than"):
        _must_differ(_ctx(False), before, after, "logits")


@pytest.mark.parametrize(
    ("name", "pid", "explained"),
    [
        ("torch-sdpa-math", "masking.causal_alignment_as_declared", "top-left aligned"),
        ("torch-mha", "multihead.fully_padded_item_follows_policy", "returns NaN"),
        ("torch-mha-averaged", "multihead.weights_are_distributions_per_head", "averaged"),
        ("torch-layers-slow", "layers.padding_no_effect", "True = must not attend"),
    ],
)
def test_a_declared_convention_shows_as_a_difference(name: str, pid: str, explained: str) -> None:
    r = outcome(name, pid)
    assert r.outcome == "convention" and explained in r.reason


@pytest.mark.parametrize(
    ("name", "conventions", "pid"),
    [
        (
            "torch-sdpa-math",
            {"causal_alignment": "bottom_right"},
            "masking.causal_alignment_as_declared",
        ),
        (
            "torch-sdpa-math",
            {"mask_polarity": "true_blocks"},
            "masking.masked_content_has_no_effect",
        ),
        ("torch-mha", {"mask_polarity": "true_attends"}, "multihead.padded_keys_have_no_effect"),
        ("torch-mha", {"fully_masked_row": "zeros"}, "multihead.fully_padded_item_follows_policy"),
        (
            "torch-mha-averaged",
            {"weights": "per_head"},
            "multihead.weights_are_distributions_per_head",
        ),
        ("torch-layers-fast", {"mask_polarity": "true_attends"}, "layers.padding_no_effect"),
    ],
)
def test_a_wrongly_declared_convention_fails(
    name: str, conventions: dict[str, str], pid: str
) -> None:
    target = redeclared(name, **conventions)
    assert outcome(target, pid).outcome == "fail"


def _raises(*args: object, **kwargs: object) -> None:
    raise RuntimeError("fast path reached")


@pytest.mark.parametrize(
    ("kernel", "fast", "slow", "pid"),
    [
        (
            "_transformer_encoder_layer_fwd",
            "torch-layers-fast",
            "torch-layers-slow",
            "layers.residual_path",
        ),
        (
            "_native_multi_head_attention",
            "torch-mha-fast",
            "torch-mha",
            "multihead.causal_no_future_leak",
        ),
        (
            "_nested_tensor_from_mask",
            "torch-transformer-nested",
            "torch-transformer-fast",
            "model.encoder_only.padding_has_no_effect",
        ),
    ],
)
def test_the_fast_path_is_the_one_that_runs(
    kernel: str, fast: str, slow: str, pid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, kernel, _raises)
    r = outcome(fast, pid)
    assert r.outcome == "fail" and "fast path reached" in r.message
    assert outcome(slow, pid).outcome == "pass"


def _refusing(refuse: Callable[[Tensor], bool]) -> Target:
    sdpa = load_target("torch-sdpa-math")
    assert sdpa.attention is not None
    inner = sdpa.attention

    def attention(
        q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None, causal: bool
    ) -> tuple[Tensor, Tensor | None]:
        if refuse(q):
            raise Unsupported("no kernel for this shape")
        return inner(q, k, v, mask=mask, causal=causal)

    return dataclasses.replace(sdpa, attention=attention)


def test_refused_examples_are_redrawn_and_reported() -> None:
    r = outcome(_refusing(lambda q: q.shape[0] % 2 == 1), "attention.matches_float64_formula")
    assert r.outcome == "pass" and "refused by the library: no kernel" in r.reason
    r = outcome(_refusing(lambda q: True), "attention.matches_float64_formula")
    assert r.outcome == "not_applicable"
    assert r.reason == "the library refused every example: no kernel for this shape"


def test_a_difference_needs_an_explanation() -> None:
    with pytest.raises(ValueError, match=r"\['causal_alignment'\] differ from the reference"):
        Conventions(causal_alignment="top_left")
    with pytest.raises(ValueError, match="explanations for unknown fields"):
        Conventions(explanations={"polarity": "typo"})


def test_known_failures_can_name_one_target() -> None:
    known = [KnownFailure("hf-gpt2*/training.*", "HF upcasts the loss", 1)]
    assert known_reason(known, "training.pad_ignored", "hf-gpt2-eager") == "HF upcasts the loss"
    assert known_reason(known, "training.pad_ignored", "hf-bart") is None


def test_known_failures_can_be_limited_to_dtypes_and_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug of one dtype is listed for that dtype only: the others keep failing on it."""
    file = tmp_path / "known.txt"
    file.write_text(
        "mutant:causal-off-by-one/masking.causal_no_future_leak@bfloat16,cpu leaks in bf16\n"
    )
    argv = ["check", "mutant:causal-off-by-one", "--dtype", "float32", "--dtype", "bfloat16"]
    argv += ["--property", "masking.causal_no_future_leak", "--profile", "ci"]
    doc = tmp_path / "run.json"
    assert main([*argv, "--known-failures", str(file), "--json", str(doc)]) == 1
    outcomes = [c["results"][0]["outcome"] for c in json.loads(doc.read_text())["cells"]]
    assert outcomes == ["fail", "known_failure"]
    capsys.readouterr()
    file.write_text("masking.*@float8 no such dtype\n")
    assert main([*argv, "--known-failures", str(file)]) == 2
    err = capsys.readouterr().err
    assert "@float8: 'float8' is neither a dtype" in err and len(err.strip().splitlines()) == 1


def test_without_the_hf_extra_the_hf_targets_exit_2_and_the_rest_runs() -> None:
    block = "import sys; sys.modules['transformers'] = None; from transformer_spec.cli import main"
    hf = subprocess.run(
        [sys.executable, "-c", f"{block}; sys.exit(main(['check', 'hf-gpt2']))"],
        capture_output=True,
        text=True,
    )
    assert hf.returncode == 2 and hf.stdout == ""
    assert "target 'hf-gpt2': the Hugging Face targets need the 'hf' extra" in hf.stderr
    assert "pip install 'transformer-spec[hf]'" in hf.stderr and len(hf.stderr.splitlines()) == 1
    argv = "['check', 'torch-mha', '--property', 'multihead.causal*', '--profile', 'quick']"
    rest = subprocess.run(
        [sys.executable, "-c", f"{block}; sys.exit(main({argv}))"], capture_output=True, text=True
    )
    assert rest.returncode == 0, rest.stderr


def test_table_of_named_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.md"
    assert (
        main(["table", "torch-sdpa-math", "torch-mha", "--jobs", "1", "--markdown", str(out)]) == 0
    )
    text = out.read_text()
    assert "| `masking.causal_alignment_as_declared` | conv | n/a |" in text
    assert "**convention difference**, `torch-sdpa-math`: SDPA's is_causal is top-left" in text
    assert text in capsys.readouterr().out


def test_table_at_its_budget_names_the_cells_not_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, doc = tmp_path / "table.md", tmp_path / "table.json"
    argv = ["table", "torch-sdpa-math", "torch-mha", "--jobs", "1", "--budget", "1e-9"]
    assert main([*argv, "--markdown", str(out), "--json", str(doc)]) == 0
    assert "Not run, the 1e-09 s budget was spent: torch-sdpa-math (float32)" in out.read_text()
    assert json.loads(doc.read_text())["not_run"] == [
        "torch-sdpa-math (float32)",
        "torch-mha (float32)",
    ]
    assert "2 cells not run" in capsys.readouterr().err


def test_cells_in_workers_stop_at_the_budget() -> None:
    """A budget spent before the first item: no cell runs, in workers as in one process,
    and every cell is named as not run (no timing assumed: the deadline is already past)."""
    from transformer_spec.properties.harness import session
    from transformer_spec.properties.harness.plan import make_plan

    plan = make_plan(["reference-math"], dtype=["float32", "bfloat16"], jobs=2, budget=1e-9)
    assert plan.workers()[0] == 2  # a plan this size goes to the workers
    done = session.run(plan)
    assert done.cells == [] and done.workers == 2
    assert done.not_run == [("reference-math", "float32"), ("reference-math", "bfloat16")]


def test_table_json_and_property_options(tmp_path: Path) -> None:
    doc = tmp_path / "table.json"
    argv = ["table", "torch-sdpa-math", "--jobs", "1", "--property", "attention.permut*"]
    assert main([*argv, "--json", str(doc)]) == 0
    cells = json.loads(doc.read_text())["cells"]
    assert [r["property"] for r in cells[0]["results"]] == ["attention.permutation_equivariant"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["table", "--budget", "0"], "--budget 0: expected seconds > 0"),
        (["table", "--property", "no.such"], "--property ['no.such']: matches no property"),
        (["table", "--dtype", "float8"], "--dtype 'float8': expected one of"),
        (["table", "--jobs", "0"], "--jobs 0: expected >= 1"),
        (["table", "--device", "cuda:7"], "--device: 'cuda:7'"),
        (["table", "no-such-target"], "expected MODULE:FACTORY, mutant:NAME or a built-in target"),
        (["table", "--markdown", "/no/such/folder/t.md"], "does not exist or is not writable"),
    ],
)
def test_table_bad_input_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@HF
@pytest.mark.slow
def test_committed_cpu_table_is_what_the_command_prints(tmp_path: Path) -> None:
    committed = ROOT / "docs" / "conformance-cpu.md"
    header = committed.read_text().splitlines()[2]
    command = header.split("`")[1].split()[1:]  # the command the table says made it
    out = tmp_path / "table.md"
    run = subprocess.run(
        [sys.executable, "-m", "transformer_spec", *command, "--jobs", "2", "--markdown", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert out.read_text() == committed.read_text()


@pytest.mark.parametrize("name", ["torch-sdpa-efficient", "torch-sdpa-cudnn-float"])
def test_gpu_only_backends_are_not_applicable_on_the_cpu(name: str) -> None:
    # Declared for cuda only: on the CPU every property says why it does not apply, and the
    # CPU table leaves them out (it names them), instead of failing.
    result = outcome(name, "attention.matches_float64_formula")
    assert result.outcome == "not_applicable"
    assert "target declares no support for cpu" in result.reason


def test_cudnn_declares_its_fully_masked_rows_finite() -> None:
    conventions = load_target("torch-sdpa-cudnn").conventions
    assert conventions.fully_masked_row == "finite" and conventions.devices == ("cuda",)
    assert "neither zeros nor the mean of V" in conventions.explanations["fully_masked_row"]


def test_table_page_says_the_profile_and_seed_it_ran(tmp_path: Path) -> None:
    """`table` takes the same run options as `check` (one Plan): its page and its
    regenerating command say what ran, not a fixed 'seed 0'."""
    out = tmp_path / "table.md"
    argv = ["table", "torch-sdpa-math", "--jobs", "1", "--property", "attention.permut*"]
    assert main([*argv, "--profile", "quick", "--seed", "3", "--markdown", str(out)]) == 0
    page = out.read_text()
    assert "Profile `quick` (10 examples per property, seed 3)." in page
    assert "--profile quick --seed 3" in page
    assert main([*argv, "--markdown", str(out)]) == 0
    assert "Profile `ci` (25 examples per property, seed 0)." in out.read_text()


def _body(page: str) -> str:
    """The table without its first lines (the command that made it)."""
    return page.split("## Targets", 1)[1]


def test_table_shards_merge_into_the_whole_table(tmp_path: Path) -> None:
    names = ["torch-sdpa-math", "torch-mha", "reference-math"]
    argv = ["table", *names, "--jobs", "1", "--property", "attention.permut*"]
    argv += ["--property", "multihead.output_shape*", "--dtype", "float32", "--dtype", "float64"]
    whole = tmp_path / "whole.md"
    assert main([*argv, "--markdown", str(whole)]) == 0
    shards = [tmp_path / f"shard{i}.json" for i in (1, 2, 3)]
    for i, shard in enumerate(shards, start=1):
        assert main([*argv, "--shard", f"{i}/3", "--json", str(shard)]) == 0
        assert len(json.loads(shard.read_text())["cells"]) == 2  # 6 cells in 3 shares
    merged, doc = tmp_path / "merged.md", tmp_path / "merged.json"
    reports = [str(s) for s in reversed(shards)]  # the order of the reports does not matter
    assert main(["merge", *reports, "--markdown", str(merged), "--json", str(doc)]) == 0
    assert _body(merged.read_text()) == _body(whole.read_text())
    assert "Profile `ci` (25 examples per property, seed 0)." in merged.read_text()
    assert len(json.loads(doc.read_text())["cells"]) == 6


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d.write_text("{not json"), "cannot read it"),
        (lambda d: d.write_text('{"cells": []}'), "not a transformer-spec JSON report"),
    ],
)
def test_merge_refuses_what_is_not_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    bad = tmp_path / "bad.json"
    make(bad)
    assert main(["merge", str(bad)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_merge_refuses_two_reports_that_disagree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "a.json"
    argv = ["table", "torch-sdpa-math", "--jobs", "1", "--property", "attention.permut*"]
    assert main([*argv, "--json", str(first)]) == 0
    doc = json.loads(first.read_text())
    doc["cells"][0]["results"][0]["outcome"] = "fail"
    second = tmp_path / "b.json"
    second.write_text(json.dumps(doc))
    assert main(["merge", str(first), str(second)]) == 2
    assert "torch-sdpa-math | cpu | float32 is in" in capsys.readouterr().err
    assert main(["merge", str(second)]) == 1  # a failure with no written reason


@pytest.mark.parametrize("word", ["0/3", "4/3", "1-3", "x"])
def test_table_bad_shard(word: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table", "torch-sdpa-math", "--shard", word]) == 2
    assert f"--shard {word!r}: expected I/N with 1 <= I <= N" in capsys.readouterr().err
