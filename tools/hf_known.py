"""Write docs/hf-known.txt from a board's JSON: each failure whose cause has been shown by a
stand-alone reproduction in docs/repro/ becomes an entry `hf:CLASS/PROPERTY reason`, one per
failing property (never a glob: another failure of the same class stays a failure). A
failure that matches no cause is left out, so that the board keeps reporting it as FAIL.

    transformer-spec board --jobs 2 --json board.json
    python tools/hf_known.py board.json > docs/hf-known.txt
    transformer-spec merge board.json --known-failures docs/hf-known.txt --markdown docs/hf-board.md

Failures in other dtypes (the board runs float32), found by `check --dtype all` on the most
used classes, are written as they are (OTHER_CELLS), limited to their dtype.

A cause is a message fragment (any class whose failure says it) or a class (any failure of
that class), with the reason and its reproduction; a class is named only after its
reproduction showed that every one of its failures comes from that bug.
"""

import json
import sys
from pathlib import Path
from typing import Any

from transformer_spec.properties.reports.board import OWN_BUILD

REPRO = "docs/repro/"
# (message fragment, reason): the failure's message says the cause.
BY_MESSAGE = (
    (
        "Expected mat_a to be Float32, BFloat16 or Float16 matrix, got Double",
        "the default mixture-of-experts path has no float64 kernel (transformers sends float64 "
        f"experts to torch's grouped_mm): {REPRO}hf_moe_float64.py",
    ),
    (
        "returned result of dtype torch.float32, expected torch.float64",
        "the causal-LM head casts float64 logits to float32 with .float(): "
        f"{REPRO}hf_float64_logits_downcast.py",
    ),
)
# class -> reason: every failure of the class comes from this bug (its reproduction shows it).
BY_CLASS = {
    "FSMTForConditionalGeneration": "FSMT's decoder has no causal mask while use_cache is on "
    "(its default), and cannot run float64 with it off: "
    f"{REPRO}hf_fsmt_no_causal_mask.py",
    "XLMWithLMHeadModel": "in causal mode XLM ignores its padding mask in attention: "
    f"{REPRO}hf_xlm_causal_padding.py",
    "XLNetLMHeadModel": "unidirectional XLNet (attn_type='uni') cannot take an attention mask: "
    f"{REPRO}hf_xlnet_uni_mask.py",
    "ConvBertForMaskedLM": "padding reaches the real tokens through ConvBERT's span "
    f"convolution: {REPRO}hf_padding_leaks.py",
    "NystromformerForMaskedLM": "padding reaches the real tokens through Nystromformer's "
    f"convolution of the values: {REPRO}hf_padding_leaks.py",
    "YosoForMaskedLM": "padded keys reach YOSO's normaliser, and the real tokens with it: "
    f"{REPRO}hf_padding_leaks.py",
    "BambaForCausalLM": "Bamba's cached decoding disagrees with its full pass, in float64 by "
    f"1e-4: {REPRO}hf_bamba_cache.py",
    "MraForMaskedLM": f"MRA cannot run in float64 (a float32 matrix): {REPRO}"
    "hf_float64_dtype_errors.py",
    "XGLMForCausalLM": "XGLM cannot run in float64 (float64's smallest value put into a float32 "
    f"mask): {REPRO}hf_float64_dtype_errors.py",
    "Inkling2ForCausalLM": "Inkling 2 cannot run in float64 (its router casts activations to "
    f"float32): {REPRO}hf_float64_dtype_errors.py",
    "ProphetNetForConditionalGeneration": "ProphetNet's logits at a target position change with "
    "the target's length, and are NaN in float64 given an attention mask: "
    f"{REPRO}hf_prophetnet.py",
    "RwkvForCausalLM": "RWKV returns logits of shape (batch, 2, vocab) for a batch of one-token "
    f"sequences: {REPRO}hf_rwkv_single_token_batch.py",
    "SwitchTransformersForConditionalGeneration": "use_cache=True is forwarded to Switch "
    f"Transformers' encoder, which rejects it: {REPRO}hf_switch_use_cache.py",
}
# The board's "build" entry (a class its own default config cannot build) gives this reason.
BUILD_REASON = f"its own default config cannot build it: {REPRO}hf_default_configs.py"
BUILD_CLASSES = (  # the classes that reproduction builds
    "DbrxForCausalLM",
    "CohereCompassForCausalLM",
    "Lfm2MoeForCausalLM",
    "Gemma4AssistantForCausalLM",
    "Gemma4UnifiedAssistantForCausalLM",
)


# Failures in cells the float32 board does not run, found by `check --dtype all` on the
# most used classes (docs/hf-classes.md): written as they are, with their dtype.
OTHER_CELLS = tuple(
    f"hf:{name}/model.decoder_only.padding_has_no_effect@float64 in float64, {who} gives NaN "
    "logits at the real tokens of a left-padded sequence (the <PAD> queries see no key, and "
    f"their NaN reaches the real tokens in the next layer): {REPRO}hf_float64_left_padding_nan.py"
    for name, who in (("Gemma2ForCausalLM", "Gemma 2"), ("BloomForCausalLM", "BLOOM"))
)


def entries(board: dict[str, Any]) -> list[str]:
    lines = list(OTHER_CELLS)
    for row in board["board"]:
        target = f"hf:{row['class_name']}"
        if str(row["problem"]).startswith(OWN_BUILD) and row["class_name"] in BUILD_CLASSES:
            lines.append(f"{target}/build {BUILD_REASON}")
        for result in row["results"]:
            if result["outcome"] not in ("fail", "known_failure"):
                continue
            reason = BY_CLASS.get(row["class_name"]) or next(
                (why for part, why in BY_MESSAGE if part in result["message"]), None
            )
            if reason is not None:
                lines.append(f"{target}/{result['property']} {reason}")
    return lines


def main(path: str) -> None:
    board = json.loads(Path(path).read_text(encoding="utf-8"))
    print(
        "# Known failures of the Hugging Face board (transformer-spec board --known-failures):\n"
        "# bugs of transformers 5.23.0, each with its stand-alone reproduction. Written by\n"
        "# tools/hf_known.py from a board's JSON; hf:CLASS/build names a class that its own\n"
        "# default config cannot build."
    )
    print("\n".join(entries(board)))


if __name__ == "__main__":
    main(sys.argv[1])
