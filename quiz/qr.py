"""QR codes as inline SVG: the projector's join code, a player's check-in code."""
import functools
import io

from flask import current_app


def join_qr_svg() -> str:
    """The QR code on the projector: where to register."""
    return qr_svg(f"{current_app.config['PUBLIC_BASE_URL']}/register")


@functools.lru_cache(maxsize=64)
def qr_svg(url: str) -> str:
    """An SVG QR code for `url` (cached: the projector polls)."""
    import segno  # on the first page with a QR code, not at a process start
    out = io.BytesIO()
    # micro=False: a short text (a check-in code) would otherwise become a Micro QR, which phones
    # and jsQR can't read.
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", scale=10, border=2, dark="#0b1020", light="#ffffff", xmldecl=False,
        svgns=True, omitsize=True)  # a viewBox and no fixed size: it scales to its CSS box
    return out.getvalue().decode()
