"""What the projector is checked for beyond axe: type big enough to read from the back of the room
and text contrast measured over the stage's own background (axe leaves text over a gradient
unchecked)."""
from playwright.sync_api import Page

# Every visible text on the stage, with its size, weight and contrast over what is behind it: the
# element's own and its ancestors' backgrounds (translucent ones blended in), down to the first
# with a gradient, whose every stop is tried (the worst counts); the text's opacity and its
# ancestors' are blended in too.
MEASURE = """() => {
  const rgba = s => { const m = s.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, base) => [0, 1, 2].map(i => top[i] * top[3] + base[i] * (1 - top[3]))
    .concat([1]);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const ratio = (a, b) => { const [h, l] = [lum(a), lum(b)].sort((x, y) => y - x);
    return (h + 0.05) / (l + 0.05); };
  function backgrounds(el) {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e), colour = rgba(s.backgroundColor);
      if (s.backgroundImage && s.backgroundImage.includes('gradient')) {
        const stops = [...s.backgroundImage.matchAll(/rgba?\\([^)]+\\)/g)].map(m => rgba(m[0]));
        return stops.map(stop => layers.reduceRight((bg, layer) => over(layer, bg),
                                                    over(stop, colour || [0, 0, 0, 1])));
      }
      if (colour && colour[3] >= 1) return [layers.reduceRight((bg, l) => over(l, bg), colour)];
      if (colour && colour[3] > 0) layers.push(colour);
    }
    return [layers.reduceRight((bg, l) => over(l, bg), [255, 255, 255, 1])];
  }
  const stage = document.querySelector('#stage');
  const headlines = [...stage.querySelectorAll('h1, .countdown')].map(e =>
      [e.tagName.toLowerCase() + '.' + e.className, parseFloat(getComputedStyle(e).fontSize)]);
  const texts = [...stage.querySelectorAll('*')].filter(e =>
      [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())
      && e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden'
      && !e.closest('[aria-hidden="true"]')).map(e => {
    const s = getComputedStyle(e);
    let opacity = 1;
    for (let a = e; a; a = a.parentElement) opacity *= Number(getComputedStyle(a).opacity);
    const ink = rgba(s.color); ink[3] *= opacity;
    const worst = Math.min(...backgrounds(e).map(bg => ratio(over(ink, bg), bg)));
    return {text: [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent)
              .join('').trim().slice(0, 40),
            where: e.tagName.toLowerCase()
              + (e.className ? '.' + String(e.className).split(' ').join('.') : ''),
            size: parseFloat(s.fontSize), weight: Number(s.fontWeight),
            contrast: Math.round(worst * 100) / 100};
  });
  return {texts, headlines};
}"""
SMALLEST = 28  # px: any text on the stage, read from the back row
HEADLINE = 48  # px: the stage's headline and the round's countdown, far bigger
CONTRAST = 4.5  # WCAG AA for normal text; a projector washes colours out, so large text gets no
# discount here


def readable_from_the_back(page: Page, stage: str) -> list[dict]:
    """Every text on the stage is at least SMALLEST px and CONTRAST:1, its headline (and a
    countdown) at least HEADLINE px; returns the measurements (taken in one go: a live frame may
    replace the stage any time)."""
    measured = page.evaluate(MEASURE)
    texts = measured["texts"]
    assert texts, f"{stage}: no text on the stage"
    small = [t for t in texts if t["size"] < SMALLEST]
    faint = [t for t in texts if t["contrast"] < CONTRAST]
    assert not small, f"{stage}: text smaller than {SMALLEST} px: {small}"
    assert not faint, f"{stage}: text below {CONTRAST}:1: {faint}"
    assert measured["headlines"], f"{stage}: no headline"
    for where, size in measured["headlines"]:
        assert size >= HEADLINE, f"{stage}: {where} is {size} px, under {HEADLINE}"
    return texts
