"""How a text's tokens look: coloured spans with visible whitespace, their ids, and counts that agree
with what is shown. For the Tokens screen (rich Text only, so its worker can draw them)."""

from __future__ import annotations

from rich.text import Text

from core.tokens.spans import TokenSpan, count_tokens, count_unknown

MAX_SHOWN = 2000  # spans drawn per panel; the counts always cover the whole text
# Pastel backgrounds with dark text read well under light and dark themes alike.
BACKGROUNDS = ("#b3d9ff", "#ffd8a8", "#c3f0ca", "#f5c2e7", "#e0d4ff")
UNTRAINED_STYLE = "bold #8b0000 on #ffe066"
UNKNOWN_STYLE = "bold white on #c0392b"
SPECIAL_STYLE = "bold white on #6c5ce7"
VISIBLE_WHITESPACE = str.maketrans({" ": "·", "\n": "↵", "\t": "→", "\r": "␍"})


def span_style(span: TokenSpan, index: int) -> str:
    if span.special:
        return SPECIAL_STYLE
    if not span.ids:
        return UNKNOWN_STYLE
    if span.untrained:
        return UNTRAINED_STYLE
    return f"#1a1a1a on {BACKGROUNDS[index % len(BACKGROUNDS)]}"


def render_splits(spans: list[TokenSpan]) -> Text:
    """The text as coloured tokens, whitespace made visible (line breaks are kept as well as shown)."""
    text = Text()
    for index, span in enumerate(spans[:MAX_SHOWN]):
        shown = "?" if span.bad_id is not None else span.text.translate(VISIBLE_WHITESPACE)
        text.append(shown, span_style(span, index))
        if "\n" in span.text:
            text.append("\n")
    if len(spans) > MAX_SHOWN:
        text.append(f" … ({len(spans) - MAX_SHOWN} more)", "dim")
    return text


def render_ids(spans: list[TokenSpan]) -> Text:
    """The ids, coloured like their spans; a span of several tokens shows its ids in brackets."""
    text = Text()
    for index, span in enumerate(spans[:MAX_SHOWN]):
        if index:
            text.append(" ")
        if span.bad_id is not None:
            label = f"{span.bad_id}?"
        elif not span.ids:
            label = " ".join("?" * len(span.text))  # one `?` per character the vocabulary lacks
        else:
            label = str(span.ids[0]) if len(span.ids) == 1 else f"[{' '.join(map(str, span.ids))}]"
        text.append(label, span_style(span, index))
    return text


def render_stats(spans: list[TokenSpan], decoding: bool = False) -> str:
    """Counts that agree with what the panel shows: every id and every `?` is a token."""
    tokens, chars = count_tokens(spans), sum(len(span.text) for span in spans)
    untrained, unknown = sum(span.untrained for span in spans), count_unknown(spans)
    parts = [f"{tokens} tokens", f"{chars} chars"]
    if tokens:
        parts.append(f"{chars / tokens:.2f} chars/token")
    if untrained:
        parts.append(f"{untrained} untrained")
    if unknown:
        parts.append(f"{unknown} {'ids' if decoding else 'chars'} not in the vocabulary (shown as ?)")
    return " · ".join(parts)


def legend() -> Text:
    """What the colours and marks of the splits mean."""
    return Text.assemble(
        ("·", "bold"), " space  ", ("↵", "bold"), " newline  ", ("→", "bold"), " tab\n",
        ("untrained", UNTRAINED_STYLE), " never in the training data\n",
        ("unknown", UNKNOWN_STYLE), " not in the vocabulary  ",
        ("special", SPECIAL_STYLE), " special",
    )  # fmt: skip
