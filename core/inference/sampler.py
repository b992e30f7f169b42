"""Streaming text generation: temperature, top-k, top-p, min-p, repetition penalty, stop strings.

`generate()` yields one `TokenPiece` per generated token, as soon as it is chosen. Rules it follows:

- Text is UTF-8-safe: token bytes go through an incremental UTF-8 decoder, so a character split over
  several BPE tokens appears whole, with the token that completes it (earlier tokens give "").
  Bytes that can never form a character become U+FFFD.
- Stop strings: generation ends when the text contains one; neither it nor anything after it is
  yielded. Text that could be the start of a stop string is held back until that is decided, so a
  piece's text is whatever this token released, which may include text held back before. The last
  piece names the stop string that ended the text (`stop`), so a front end can say why it ended.
- The concatenated texts are the generated text (cut before a stop string). The last token of a run
  that reaches `max_new_tokens` releases everything still held, incomplete characters as U+FFFD.
  A cancelled run ends at once and drops what was held back.
- `prob` and `alternatives` describe the distribution after the repetition penalty and temperature,
  before top-k / top-p / min-p filtering (what the model weighed, not what the filters allowed).
  Greedy runs take that distribution at temperature 1.
- Temperatures below GREEDY_BELOW count as 0 (greedy): that cold, the likeliest token is all but
  certain anyway, and dividing the logits by ever smaller numbers overflows them to inf (NaN odds).
- Logits that are not finite (a model with NaN weights, e.g. saved after training diverged) raise
  SamplerError: there is nothing to sample from.
- An empty prompt starts from <|endoftext|> when the tokenizer has it (gpt2), else from "\\n" when
  the vocabulary has it (char, as nanoGPT does), else from token 0. That token is not yielded.
- Past the model's block the context window jumps forward (see `core.model.gpt.ContextWindow`); the same
  policy holds with and without the KV cache, so both give the same text for the same seed.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from core.dataset.files import PASS_VOCABULARY
from core.model.gpt import GPT, ContextWindow
from core.settings.sampling import GREEDY_BELOW, SamplerError, SamplingConfig
from core.tokens.tokenizers import CharTokenizer, Tokenizer, TokenizerError


@dataclass
class TokenPiece:
    """One generated token and what it adds to the text."""

    token_id: int
    text: str  # text released by this token ("" while a character or a possible stop string is pending)
    prob: float  # probability of this token, after penalty and temperature, before filtering
    # The likeliest tokens as (id, text, prob), likeliest first; the text is the token's own bytes,
    # U+FFFD where they hold part of a character.
    alternatives: list[tuple[int, str, float]] = field(default_factory=list)
    stop: str | None = None  # on the last piece: the stop string that ended the text there


def start_token(tokenizer: Tokenizer) -> int:
    """The token an empty prompt starts from (see the module docstring)."""
    if "<|endoftext|>" in tokenizer.special_tokens:
        return tokenizer.special_tokens["<|endoftext|>"]
    if isinstance(tokenizer, CharTokenizer):
        return tokenizer.stoi.get("\n", 0)
    return 0


def encode_prompt(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """The prompt's token ids, or a SamplerError naming the characters the vocabulary lacks."""
    if not prompt:
        return [start_token(tokenizer)]
    if isinstance(tokenizer, CharTokenizer):
        missing = sorted(set(prompt) - tokenizer.stoi.keys())
        if missing:
            raise SamplerError(
                f"the prompt has characters that are not in the model's vocabulary: "
                f"{', '.join(repr(c) for c in missing)}"
            )
    try:
        return tokenizer.encode(prompt)
    except TokenizerError as error:
        raise SamplerError(f"the prompt cannot be encoded: {error}") from None


def filter_probs(probs: torch.Tensor, config: SamplingConfig) -> torch.Tensor:
    """Zero the tokens top-k, top-p and min-p leave out (probs: (V,), already tempered). Unnormalised."""
    if config.top_k is not None and config.top_k < probs.numel():
        kth = torch.topk(probs, config.top_k).values[-1]
        probs = torch.where(probs < kth, 0.0, probs)
    if config.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # A token stays when the tokens before it have not yet reached top_p: the likeliest always stays.
        before = torch.cumsum(sorted_probs, dim=0) - sorted_probs
        dropped = order[before >= config.top_p * sorted_probs.sum()]
        probs = probs.clone()
        probs[dropped] = 0.0
    if config.min_p > 0.0:
        probs = torch.where(probs < config.min_p * probs.max(), 0.0, probs)
    return probs


def _stop_hold(text: str, stops: list[str]) -> int:
    """Length of the longest end of `text` that is the beginning of a stop string."""
    for length in range(min(len(text), max(len(s) for s in stops) - 1), 0, -1):
        if any(s.startswith(text[-length:]) for s in stops):
            return length
    return 0


def generate(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str,
    config: SamplingConfig,
    device: str | torch.device = "cpu",
    cancel: threading.Event | None = None,
    use_cache: bool = True,
) -> Iterator[TokenPiece]:
    """Continue `prompt`, yielding a TokenPiece per generated token (rules in the module docstring).

    Moves the model to `device` (a no-op when it is there). Checks the settings and the prompt when
    called, and `cancel` before every token.
    """
    config.validate()
    if tokenizer.vocab_size > model.config.vocab_size:
        raise SamplerError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model only {model.config.vocab_size}: "
            f"they do not belong together ({PASS_VOCABULARY})"
        )
    tokens = encode_prompt(tokenizer, prompt)
    return _generate(model.to(device), tokenizer, tokens, config, torch.device(device), cancel, use_cache)


def _generate(
    model: GPT,
    tokenizer: Tokenizer,
    tokens: list[int],
    config: SamplingConfig,
    device: torch.device,
    cancel: threading.Event | None,
    use_cache: bool,
) -> Iterator[TokenPiece]:
    # A separate function, so generate() raises bad input at the call, not at the first next().
    generator = torch.Generator(device=device)
    if config.seed is None:
        generator.seed()
    else:
        generator.manual_seed(config.seed)
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""  # decoded text not yet yielded (a possible start of a stop string)

    # Inference mode is on only while computing, never across a yield: the caller runs its own code
    # between pieces. The model's train/eval mode is restored when the generator ends or is closed.
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            window = ContextWindow(model, use_cache=use_cache)
            # nanoGPT pads the vocabulary (50257 -> 50304): ids the tokenizer lacks are never sampled.
            usable = torch.full((model.config.vocab_size,), float("-inf"), device=device)
            usable[: tokenizer.vocab_size] = 0.0
            seen = torch.zeros(model.config.vocab_size, dtype=torch.bool, device=device)
            seen[tokens] = True

        for step in range(config.max_new_tokens):
            if cancel is not None and cancel.is_set():
                return
            with torch.inference_mode():
                logits = window.next_logits(tokens).float()  # (V,)
                if not bool(torch.isfinite(logits).all()):
                    raise SamplerError(
                        "the model's output is not a number (NaN or infinite logits): its weights are broken, "
                        "e.g. saved after training diverged; use an earlier checkpoint"
                    )
                logits = logits + usable
                token_id, probs = _choose(logits, seen, config, generator)
                seen[token_id] = True
                prob, alternatives = float(probs[token_id]), _alternatives(tokenizer, probs, config)
            tokens.append(token_id)

            last = step == config.max_new_tokens - 1
            pending += utf8.decode(tokenizer.token_bytes(token_id), final=last)
            hits = [(at, stop) for stop in config.stop if (at := pending.find(stop)) >= 0]
            stop = min(hits)[1] if hits else None  # the one that starts first
            if stop is not None:
                text, pending = pending[: pending.find(stop)], ""
            else:
                hold = 0 if last or not config.stop else _stop_hold(pending, config.stop)
                text, pending = pending[: len(pending) - hold], pending[len(pending) - hold :]
            yield TokenPiece(token_id, text, prob, alternatives, stop)
            if stop is not None:
                return
    finally:
        model.train(was_training)


def _choose(
    logits: torch.Tensor, seen: torch.Tensor, config: SamplingConfig, generator: torch.Generator
) -> tuple[int, torch.Tensor]:
    """The next token and the distribution reported with it (logits, seen: (V,))."""
    if config.repetition_penalty != 1.0:
        # CTRL's penalty: shrink positive logits, grow negative ones, of tokens already in the context.
        penalised = torch.where(logits > 0, logits / config.repetition_penalty, logits * config.repetition_penalty)
        logits = torch.where(seen, penalised, logits)
    greedy = config.temperature < GREEDY_BELOW
    probs = torch.softmax(logits / (1.0 if greedy else config.temperature), dim=-1)  # (V,)
    if greedy:
        return int(torch.argmax(logits)), probs
    return int(torch.multinomial(filter_probs(probs, config), 1, generator=generator)), probs


def _alternatives(tokenizer: Tokenizer, probs: torch.Tensor, config: SamplingConfig) -> list[tuple[int, str, float]]:
    """The `config.alternatives` likeliest tokens, likeliest first (the chosen one may be among them)."""
    if not config.alternatives:
        return []
    values, ids = torch.topk(probs, min(config.alternatives, tokenizer.vocab_size))
    return [
        (i, tokenizer.token_bytes(i).decode("utf-8", errors="replace"), p)
        for i, p in zip(ids.tolist(), values.tolist())
    ]
