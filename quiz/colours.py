"""Brand colours: a hex colour checked, its contrast with text (WCAG 2.1), the text colour to put
on it."""
import re

HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
BLACK, WHITE = "#000000", "#ffffff"
AA_NORMAL = 4.5  # WCAG 2.1 AA for normal text


class ColourError(ValueError):
    """Not a hex colour; the message says what to write instead."""


def parse_colour(value: str, name: str) -> str:
    """`value` (#rgb, #rrggbb, with or without #) as #rrggbb in lower case; ColourError
    otherwise."""
    match = HEX.fullmatch(value.strip())
    if not match:
        raise ColourError(f"{name} must be a hex colour such as #5b3df5 (or #53f), "
                          f"not {value!r}.")
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits}"


def luminance(colour: str) -> float:
    """Relative luminance of a #rrggbb colour (WCAG 2.1)."""
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    """The contrast ratio of two #rrggbb colours, 1 to 21."""
    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def ink_on(colour: str) -> str:
    """Black or white, whichever reads better on `colour`."""
    return WHITE if contrast(colour, WHITE) >= contrast(colour, BLACK) else BLACK


def lighter_until(colour: str, background: str, minimum: float = AA_NORMAL) -> str:
    """`colour` mixed with white, as little as it takes to reach `minimum` contrast as text on a
    dark `background` (the colour itself when it does already)."""
    for step in range(21):
        mixed = "#" + "".join(
            f"{round(int(colour[i:i + 2], 16) + (255 - int(colour[i:i + 2], 16)) * step / 20):02x}"
            for i in (1, 3, 5))
        if contrast(mixed, background) >= minimum:
            return mixed
    return WHITE
