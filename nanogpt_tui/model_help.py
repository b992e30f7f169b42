"""What each view of the Model screen shows and how to read it: one line under each tab (no torch).

Numbers without a word on what they mean teach little: an attention cell is a share of what a token
gathers, a lens row is a guess read out early. These are the words, kept apart from the drawing code.
"""

from __future__ import annotations

TAB_HELP = {
    "tab-anatomy": "Every weight tensor by its name, its shape and its share of the parameters; below, what one "
                   "forward pass does to a batch of B sequences of T tokens, step by step, shape by shape.",
    "tab-loss": "Knowing nothing, a model spreads its bets evenly over the V tokens: loss ln(V). An untrained "
                "model should start there; what training takes off it is what it has learned.",
    "tab-attention": "A cell is the share of its attention the row's token (the query) gives the column's token "
                     "(a key): each row sums to 100% over the tokens up to it; the future (upper right) is masked.",
    "tab-lens": "Each row reads the residual stream after a block through ln_f and lm_head, as if the model "
                "stopped there: what it would predict next, with its probability.",
    "tab-embeddings": "Each token is a vector (a row of the token embedding). Left: all of them on their two main "
                      "directions (PCA); tokens used alike sit together. Right: the cursor token's nearest, by cosine.",
}
# The lens's embeddings row of a tied model predicts the token itself: worth a word where it shows.
TIED_LENS = ("With a tied head the 'embeddings' row predicts the token itself: lm_head's weight is wte, so a "
             "token's vector scores highest against its own row.")


def lens_help(tied: bool) -> str:
    """The logit lens's line, with why its first row repeats the token when the head is tied."""
    return f"{TAB_HELP['tab-lens']} {TIED_LENS}" if tied else TAB_HELP["tab-lens"]
