"""One forward pass, step by step, for the model a config describes (torch-free).

The Model screen and `nanogpt-tui inspect` list these steps with their tensor shapes, so they must be
the steps the model really takes: for the GPT with every recipe knob (rotary positions instead of `wpe`,
QK-norm, RMSNorm, ReLU², an untied head, the token shift), and for each step of the lecture's ladder (core.model.ladder).
Each `ForwardStep` names what it runs in `calls`: a module by its dotted name (a block's or a head's
index written `*`), or a function that module's forward calls, as `module:function` (`:function` for
the model's own forward). tests/test_forward_pass.py runs each model with forward hooks and a
TorchFunctionMode and checks that the calls it records, in order, are exactly these.

Shapes: B is the batch, T the tokens, C = n_embd, H = n_head, hs = C / H, V = vocab_size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.model.arch import GPT_ARCH


@dataclass(frozen=True)
class ForwardStep:
    step: str  # what happens, in the lecture's and nanoGPT's words
    shape: str  # the shape of its result ("" for a section heading)
    calls: tuple[str, ...] = ()  # the modules and functions it runs (see the module docstring)


def forward_steps(config: dict[str, Any], T: int | None = None) -> list[ForwardStep]:
    """The steps of one forward pass (with targets: logits at every position) of the model `config`
    describes (a checkpoint's model_args, or settings plus vocab_size); T defaults to the block size."""
    T = int(config["block_size"]) if T is None else T
    arch = config.get("arch", GPT_ARCH)
    if arch == GPT_ARCH:
        return _gpt(config, T)
    return _ladder(arch, config, T)


def _gpt(config: dict[str, Any], T: int) -> list[ForwardStep]:
    C, H, V, L = (int(config[k]) for k in ("n_embd", "n_head", "vocab_size", "n_layer"))
    hs = C // H
    norm, norm_fn = ("RMSNorm", "rms_norm") if config.get("rmsnorm") else ("LayerNorm", "layer_norm")
    h = "transformer.h.*"
    S = ForwardStep
    steps = [S("idx (token ids)", f"(B, {T})"), S("wte(idx) token embeddings", f"(B, {T}, {C})", ("transformer.wte",))]
    if config.get("token_shift"):
        steps.append(S("tok += shift_gain · the previous token's tok", f"(B, {T}, {C})", (":cat",)))
    if config.get("rope"):
        steps.append(S("x = tok (positions: rotary, in attention)", f"(B, {T}, {C})"))
    else:
        steps += [S("wpe(pos) position embeddings", f"({T}, {C})", ("transformer.wpe",)),
                  S("x = tok + pos", f"(B, {T}, {C})")]
    steps += [
        S(f"── each of the {L} blocks ──", ""),
        S(f"  ln_1(x) {norm}", f"(B, {T}, {C})", (f"{h}.ln_1", f"{h}.ln_1:{norm_fn}")),
        S("  c_attn -> q, k, v", f"(B, {T}, {3 * C}) -> 3 x (B, {T}, {C})", (f"{h}.attn.c_attn",)),
        S("  heads: q, k, v", f"(B, {H}, {T}, {hs})"),
    ]
    if config.get("qk_norm"):
        steps.append(S("  QK-norm: q, k to unit RMS", f"(B, {H}, {T}, {hs})", (f"{h}.attn:rms_norm",)))
    if config.get("rope"):
        steps.append(S("  rotary: turn q, k by position", f"(B, {H}, {T}, {hs})", (f"{h}.attn:view_as_complex",)))
    steps += [
        S("  att = softmax(q·kᵀ/√hs)", f"(B, {H}, {T}, {T})", (f"{h}.attn:scaled_dot_product_attention",)),
        S("  att @ v, heads joined", f"(B, {T}, {C})"),
        S("  x + c_proj(y)", f"(B, {T}, {C})", (f"{h}.attn.c_proj",)),
        S(f"  ln_2(x) {norm}", f"(B, {T}, {C})", (f"{h}.ln_2", f"{h}.ln_2:{norm_fn}")),
        S("  mlp.c_fc", f"(B, {T}, {4 * C})", (f"{h}.mlp.c_fc",)),
        S("  ReLU²: relu(h)²", f"(B, {T}, {4 * C})", (f"{h}.mlp:relu",)) if config.get("relu2") else
        S("  GELU", f"(B, {T}, {4 * C})", (f"{h}.mlp.gelu", f"{h}.mlp.gelu:gelu")),
        S("  x + mlp.c_proj", f"(B, {T}, {C})", (f"{h}.mlp.c_proj",)),
        S("── after the blocks ──", ""),
        S(f"ln_f(x) {norm}", f"(B, {T}, {C})", ("transformer.ln_f", f"transformer.ln_f:{norm_fn}")),
        S("lm_head -> logits", f"(B, {T}, {V})", ("lm_head",)),
        S("  (its own weight: untied)" if config.get("untie_head") else "  (tied: the weight is wte's)", ""),
    ]
    return steps


def _head(prefix: str, T: int, hs: int, indent: str) -> list[ForwardStep]:
    """One head of the lecture's self-attention (core.model.ladder.Head)."""
    return [
        ForwardStep(f"{indent}k, q = key(x), query(x)", f"(B, {T}, {hs})", (f"{prefix}.key", f"{prefix}.query")),
        ForwardStep(f"{indent}wei = softmax(q·kᵀ/√hs), causal", f"(B, {T}, {T})", (f"{prefix}:softmax",)),
        ForwardStep(f"{indent}wei @ value(x)", f"(B, {T}, {hs})", (f"{prefix}.value",)),
    ]


def _ladder(arch: str, config: dict[str, Any], T: int) -> list[ForwardStep]:
    """The steps of the lecture's model at ladder step `arch` (core.model.ladder.LanguageModel)."""
    C, H, V, L = (int(config[k]) for k in ("n_embd", "n_head", "vocab_size", "n_layer"))
    hs = C // H
    S = ForwardStep
    steps = [S("idx (token ids)", f"(B, {T})")]
    if arch == "bigram":
        return [*steps, S("token_embedding_table(idx) = logits", f"(B, {T}, {V})", ("token_embedding_table",))]
    steps += [
        S("token_embedding_table(idx)", f"(B, {T}, {C})", ("token_embedding_table",)),
        S("position_embedding_table(pos)", f"({T}, {C})", ("position_embedding_table",)),
        S("x = tok_emb + pos_emb", f"(B, {T}, {C})"),
    ]
    if arch == "head":
        steps += [S("── sa_head: one head, hs = C ──", ""), *_head("sa_head", T, C, "  ")]
    elif arch in ("heads", "ffwd"):
        steps += [S(f"── sa_heads: each of the {H} heads ──", ""), *_head("sa_heads.heads.*", T, hs, "  "),
                  S("heads joined (torch.cat)", f"(B, {T}, {C})", ("sa_heads:cat",))]
        if arch == "ffwd":
            steps.append(S("ffwd: Linear, ReLU", f"(B, {T}, {C})", ("ffwd.net.0", "ffwd.net.1", "ffwd.net.1:relu")))
    else:
        layer_norm = arch == "layernorm"
        b = "blocks.*"
        steps.append(S(f"── each of the {L} blocks ──", ""))
        if layer_norm:
            steps.append(S("  ln1(x) LayerNorm", f"(B, {T}, {C})", (f"{b}.ln1", f"{b}.ln1:layer_norm")))
        steps += [S(f"  each of the {H} heads:", ""), *_head(f"{b}.sa.heads.*", T, hs, "    "),
                  S("  heads joined, proj", f"(B, {T}, {C})", (f"{b}.sa:cat", f"{b}.sa.proj")),
                  S("  x = x + sa(x)", f"(B, {T}, {C})")]
        if layer_norm:
            steps.append(S("  ln2(x) LayerNorm", f"(B, {T}, {C})", (f"{b}.ln2", f"{b}.ln2:layer_norm")))
        steps += [
            S("  ffwd: Linear 4C, ReLU", f"(B, {T}, {4 * C})", (f"{b}.ffwd.net.0", f"{b}.ffwd.net.1", f"{b}.ffwd.net.1:relu")),
            S("  Linear back to C", f"(B, {T}, {C})", (f"{b}.ffwd.net.2",)),
            S("  x = x + ffwd(x)", f"(B, {T}, {C})"),
        ]
        if layer_norm:
            steps += [S("── after the blocks ──", ""), S("ln_f(x) LayerNorm", f"(B, {T}, {C})", ("ln_f", "ln_f:layer_norm"))]
    return [*steps, S("lm_head -> logits", f"(B, {T}, {V})", ("lm_head",))]
