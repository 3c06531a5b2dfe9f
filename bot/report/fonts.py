"""A font with Chinese glyphs for matplotlib.

Why: matplotlib's bundled DejaVu Sans has no CJK glyphs, so audience names
and keywords would draw as empty boxes. We look for a CJK font in this order:
the ``[report].cjk_font`` file from the config, fonts matplotlib already knows
(system fonts), font files in the usual system folders (installed after
matplotlib built its cache: Debian's fonts-wqy-microhei or fonts-noto-cjk),
and the fonts shipped by the ``mplfonts`` package if it is installed. Found
files are registered with matplotlib's font manager at run time.

Behind whatever is found, the package's own subset font (bot/report/font_files/,
WenQuanYi Micro Hei cut to GB2312, Apache-2.0) is always in the fallback
chain, so a fresh machine without any CJK font still draws Chinese (issue 16:
the demo's report showed boxes). Only when even that cannot load does a
warning say which package to install.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# Families with Simplified Chinese coverage, best first.
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei",
    "WenQuanYi Zen Hei", "Noto Sans CJK JP", "Noto Sans Mono CJK SC", "Droid Sans Fallback", "AR PL UMing CN",
    "AR PL UKai CN", "Microsoft YaHei", "SimHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Noto Serif CJK SC",
)
_FILE_HINTS = ("wqy", "notosanscjk", "notoserifcjk", "notosanssc", "sourcehansans", "sourcehanserif", "droidsansfallback",
               "uming", "ukai", "simhei", "msyh", "pingfang")
_SYSTEM_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".local/share/fonts"),
                str(Path.home() / ".fonts"), "/Library/Fonts", "/System/Library/Fonts", "C:/Windows/Fonts")
INSTALL_HINT = ("no font with Chinese glyphs found: charts will show boxes for Chinese text. "
                "Install one: apt-get install fonts-wqy-microhei (or fonts-noto-cjk), "
                "or pip install mplfonts, or set [report].cjk_font to a .ttf/.otf/.ttc file")

SHIPPED_FONT = "huaxiang-wqy-subset.ttf"

_lock = threading.Lock()
_cache: dict[str, str | None] = {}


def _known_family() -> str | None:
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((fam for fam in CJK_FAMILIES if fam in names), None)


def _register(path: Path) -> str | None:
    """Add one font file; return its family name if it covers Chinese."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    try:
        font_manager.fontManager.addfont(str(path))
        face = FT2Font(str(path))
        if face.get_char_index(ord("画")) == 0:
            return None
        return font_manager.FontProperties(fname=str(path)).get_name()
    except (OSError, RuntimeError, ValueError) as exc:
        log.debug("cannot use font %s: %s", path, exc)
        return None


def _candidate_files() -> list[Path]:
    found: list[Path] = []
    for d in _SYSTEM_DIRS:
        root = Path(d)
        if not root.is_dir():
            continue
        for p in root.rglob("*"):
            if p.suffix.lower() in (".ttf", ".otf", ".ttc") and any(h in p.name.lower().replace("-", "").replace("_", "")
                                                                    for h in _FILE_HINTS):
                found.append(p)
    spec = importlib.util.find_spec("mplfonts")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            fonts = Path(loc) / "fonts"
            if fonts.is_dir():
                # Noto/Source Han first: openly licensed.
                found.extend(sorted(fonts.iterdir(), key=lambda p: ("noto" not in p.name.lower(), p.name)))
    return found


def cjk_font_family(configured: str = "", quiet: bool = False) -> str | None:
    """The family name of a usable CJK font, registering one if needed (cached per process).
    ``quiet``: the shipped font covers the gap, so a missing system font is only a debug note."""
    with _lock:
        if configured in _cache:
            return _cache[configured]
        family = None
        if configured:
            path = Path(configured).expanduser()
            family = _register(path) if path.is_file() else None
            if family is None:
                log.warning("[report].cjk_font %s is missing or has no Chinese glyphs; looking for another", configured)
        family = family or _known_family()
        if family is None:
            for path in _candidate_files():
                family = _register(path)
                if family:
                    break
        if family is None:
            (log.debug if quiet else log.warning)(INSTALL_HINT)
        else:
            log.debug("charts use the CJK font %s", family)
        _cache[configured] = family
        return family


def shipped_font_family() -> str | None:
    """The family of the subset font shipped in the package (registered once per process)."""
    with _lock:
        if "<shipped>" not in _cache:
            from importlib import resources

            path = Path(str(resources.files("bot.report").joinpath("font_files").joinpath(SHIPPED_FONT)))
            _cache["<shipped>"] = _register(path) if path.is_file() else None
        return _cache["<shipped>"]


def font_rc(configured: str = "") -> dict[str, object]:
    """rcParams for charts: the best CJK font first, the shipped subset behind it, then
    DejaVu Sans (matplotlib falls back per character along this list)."""
    shipped = shipped_font_family()
    family = cjk_font_family(configured, quiet=shipped is not None)
    sans = [f for f in (family, shipped) if f] + ["DejaVu Sans"]
    return {"font.family": "sans-serif", "font.sans-serif": sans, "axes.unicode_minus": False,
            "svg.fonttype": "path"}
